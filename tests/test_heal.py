"""Links that come back whatever a peer did: libzmq gives a connecter up
for good after a ZMTP mechanism mismatch (a plain socket where a CURVE one
was, a neighbour left on security = off), and herd then makes the link
again from new sockets once it has been silent for a few heartbeats."""

import signal
import subprocess
import time

import zmq
import zmq.utils.monitor

from conftest import HERD_BIN


def wait_live(herd, names, neighbour, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        links = {name: herd.state(name)["links"][neighbour] for name in names}
        if all(link["state"] == "live" for link in links.values()):
            return links
        assert time.monotonic() < deadline, f"links to {neighbour} never came back: {links}"
        time.sleep(0.2)


def test_links_come_back_after_a_plain_impostor_held_a_dead_neighbours_address(herd):
    herd.kill("Bona", signal.SIGKILL)
    #   A plain socket (no CURVE at all) binds Bona's bus and sync for 3 s
    context = zmq.Context.instance()
    pub, router = context.socket(zmq.PUB), context.socket(zmq.ROUTER)
    pub.bind(f"tcp://127.0.0.1:{herd.bus_ports['Bona']}")
    router.bind(f"tcp://127.0.0.1:{herd.sync_ports['Bona']}")
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        pub.send(b"HEARTBEAT/2 Bona 1")
        time.sleep(0.1)
    pub.close(linger=0)
    router.close(linger=0)
    herd.start("Bona", wait=False)
    herd.wait_ready("Bona")
    links = wait_live(herd, ["Bailey", "Campbell", "Clark"], "Bona")
    assert any(link["remade"] >= 1 for link in links.values()), links
    #   (a neighbour whose connecter never met the impostor had no need to)
    for name, link in links.items():
        if link["remade"]:
            assert "making its link again from new sockets" in herd.log(name), name
    #   And Bona's updates reach everyone again
    line = herd.iamat("Bona", "back", "+1+1", f"{time.time():.9f}")
    for name in herd.graph:
        herd.wait_stored(name, "back", line, timeout=30)


def test_links_come_back_after_a_neighbour_ran_with_security_off(make_herd):
    herd = make_herd(graph={"Bailey": ["Bona"], "Bona": ["Bailey"]})
    herd.kill("Bona", signal.SIGKILL)
    plain = herd.config + ".plain"
    with open(herd.config) as source, open(plain, "w") as target:
        target.write(source.read().replace("herd\n", 'herd\n    security = "off"\n', 1))
    mistaken = subprocess.Popen([HERD_BIN, "--config", plain, "Bona"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
    #   The plain Bona stays until Bailey, hearing nothing it can take, has
    #   made its link again at least once (a fixed sleep let a busy run
    #   restart Bona before the silence was long enough)
    deadline = time.monotonic() + 30
    while herd.state("Bailey")["links"]["Bona"]["remade"] < 1:
        assert time.monotonic() < deadline, herd.state("Bailey")["links"]["Bona"]
        time.sleep(0.2)
    mistaken.send_signal(signal.SIGTERM)
    assert mistaken.wait(timeout=20) == 0
    herd.start("Bona", wait=False)
    herd.wait_ready("Bona")
    wait_live(herd, ["Bailey"], "Bona")
    line = herd.iamat("Bona", "secure.again", "+1+1", f"{time.time():.9f}")
    herd.wait_stored("Bailey", "secure.again", line, timeout=30)


def test_links_come_back_when_only_the_catch_up_link_was_given_up(make_herd):
    """The stream is heard, but the catch-up DEALER met a plain impostor on
    the dead neighbour's sync address and libzmq gave it up: the link
    stays lost (no catch-up ever answers) unless it is made again. (Most
    runs; in the others libzmq keeps the DEALER, and it comes back alone.)"""
    herd = make_herd(graph={"Bailey": ["Bona"], "Bona": ["Bailey"]})
    herd.kill("Bona", signal.SIGKILL)
    router = zmq.Context.instance().socket(zmq.ROUTER)
    watch = router.get_monitor_socket(zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
                                      | zmq.EVENT_DISCONNECTED)
    router.bind(f"tcp://127.0.0.1:{herd.sync_ports['Bona']}")
    #   Until Bailey's catch-up DEALER has met it and their handshake has
    #   failed (on a busy machine its reconnect may come late), then a
    #   moment for libzmq to give the DEALER up
    watch.setsockopt(zmq.RCVTIMEO, 30000)
    zmq.utils.monitor.recv_monitor_message(watch)
    time.sleep(0.5)
    router.disable_monitor()
    watch.close(linger=0)
    router.close(linger=0)
    herd.start("Bona", wait=False)
    herd.wait_ready("Bona")
    links = wait_live(herd, ["Bailey"], "Bona")
    #   Which side sees the mismatch first is a race: when libzmq gave the
    #   DEALER up (its requests are not even taken), the link was made
    #   again; when it did not, the DEALER reconnected by itself. Either
    #   way the link is live and catches up.
    if "cannot ask Bona for a snapshot" in herd.log("Bailey"):
        assert links["Bailey"]["remade"] >= 1, links
        assert "catch-ups with Bona failed in a row: making its link again" in herd.log("Bailey")
    line = herd.iamat("Bona", "caught.up", "+1+1", f"{time.time():.9f}")
    herd.wait_stored("Bailey", "caught.up", line, timeout=30)
