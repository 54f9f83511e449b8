"""Five real servers flooding updates over ZeroMQ (PROTOCOL.md sections 2-3)."""

import os
import signal
import time

import zmq
import zmq.auth

from conftest import AT_PATTERN


def test_iamat_at_bailey_reaches_clark_two_hops_away(herd):
    line = herd.iamat("Bailey", "kiwi.cs.ucla.edu", "+34.068930-118.445127", "1621464827.959498503")
    assert line.startswith(b"AT Bailey ")
    for name in herd.graph:
        herd.wait_stored(name, "kiwi.cs.ucla.edu", line)
    #   WHATSAT at Clark answers with Bailey's AT line, byte for byte
    at_line, places = herd.client("Clark").whatsat("kiwi.cs.ucla.edu", 10, 5)
    assert at_line == line
    assert places["status"] == "OK"


def test_stale_update_does_not_overwrite_and_newer_wins_everywhere(herd):
    first = herd.iamat("Bailey", "pear", "+1+1", "5000.25")
    for name in herd.graph:
        herd.wait_stored(name, "pear", first)
    herd.iamat("Clark", "pear", "+2+2", "5000.2499999999")       # stale
    newest = herd.iamat("Jaquez", "pear", "+3+3", "5000.2500000001")
    for name in herd.graph:
        herd.wait_stored(name, "pear", newest)
    time.sleep(0.3)
    for name in herd.graph:
        assert herd.stored_line(name, "pear") == newest


def test_equal_client_times_converge_on_the_same_line(herd):
    herd.iamat("Bailey", "tie", "+1+1", "777")
    herd.iamat("Jaquez", "tie", "+1+1", "777")
    time.sleep(0.5)
    lines = {name: herd.stored_line(name, "tie") for name in herd.graph}
    assert len(set(lines.values())) == 1, lines
    #   The bytewise greater line wins: Jaquez's beats Bailey's
    assert next(iter(lines.values())).startswith(b"AT Jaquez ")


def receive_update(sub, deadline):
    """The next update on a SUB socket, skipping heartbeats, or None."""
    while time.monotonic() < deadline:
        try:
            frames = sub.recv_multipart()
        except zmq.Again:
            continue
        if frames[0] == b"":
            assert frames[1] == b"HEARTBEAT" and frames[3].isdigit()
            continue
        return frames
    return None


def test_a_subscriber_receives_update_frames(herd):
    context = zmq.Context.instance()
    sub = herd.curve_client(context.socket(zmq.SUB), "Campbell")
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.setsockopt(zmq.RCVTIMEO, 200)
    sub.connect(f"tcp://127.0.0.1:{herd.bus_ports['Campbell']}")
    #   Slow joiner: keep updating until the first one arrives
    frames = None
    for attempt in range(100):
        herd.iamat("Clark", "watched", "+5-5", f"{9000 + attempt}")
        frames = receive_update(sub, time.monotonic() + 0.2)
        if frames:
            break
    assert frames, "no update reached the subscriber"
    assert frames[0] == b"watched"
    assert AT_PATTERN.match(frames[1])
    assert frames[1].startswith(b"AT Clark ")
    first_sequence = int(frames[2])
    #   Later updates arrive too, exactly as clients see them, numbered on
    sent = herd.iamat("Bailey", "watched", "+6-6", "99999")
    deadline = time.monotonic() + 5
    while frames and frames[1] != sent:
        frames = receive_update(sub, deadline)
    assert frames and frames[:2] == [b"watched", sent]
    assert int(frames[2]) > first_sequence
    #   A subscriber can filter by client id prefix
    filtered = herd.curve_client(context.socket(zmq.SUB), "Campbell")
    filtered.setsockopt(zmq.SUBSCRIBE, b"only")
    filtered.setsockopt(zmq.RCVTIMEO, 200)
    filtered.connect(f"tcp://127.0.0.1:{herd.bus_ports['Campbell']}")
    got = None
    for attempt in range(100):
        herd.iamat("Clark", "other", "+5-5", f"{20000 + attempt}")
        herd.iamat("Clark", "only.me", "+5-5", f"{20000 + attempt}")
        got = receive_update(filtered, time.monotonic() + 0.2)
        if got:
            break
    assert got and got[0] == b"only.me"
    sub.close(linger=0)
    filtered.close(linger=0)


def test_bus_drops_malformed_updates(make_herd):
    herd = make_herd(graph={"Bailey": ["Bona"], "Bona": ["Bailey"]}, start=False)
    #   Play Bona: a PUB on Bona's bus port, with a real Bailey listening
    context = zmq.Context.instance()
    pub = context.socket(zmq.PUB)
    #   With Bona's own keys: what is tested here is the malformed content,
    #   not the handshake (pyzmq runs no ZAP handler: any key is let in)
    public, secret = zmq.auth.load_certificate(os.path.join(herd.keys, "secret", "Bona.key_secret"))
    pub.curve_server, pub.curve_publickey, pub.curve_secretkey = True, public, secret
    pub.bind(f"tcp://127.0.0.1:{herd.bus_ports['Bona']}")
    herd.start("Bailey")
    good = b"AT Bona +0.100000000 goodclient +1+1 1"
    for attempt in range(100):
        pub.send_multipart([b"junk"])
        pub.send_multipart([b"evil", b"AT Bona +0.1 other +1+1 2"])     # id mismatch
        pub.send_multipart([b"bad", b"AT Bona nope bad +1+1 2"])
        pub.send_multipart([b"goodclient", good])
        time.sleep(0.05)
        if herd.stored_line("Bailey", "goodclient") == good:
            break
    assert herd.stored_line("Bailey", "goodclient") == good
    assert herd.stored_line("Bailey", "evil") is None
    assert herd.stored_line("Bailey", "other") is None
    assert herd.stored_line("Bailey", "bad") is None
    assert "dropped malformed update from Bona" in herd.log("Bailey")
    pub.close(linger=0)


def test_neighbour_killed_and_restarted(herd):
    herd.kill("Campbell", signal.SIGKILL)
    #   The others keep answering; Bailey reaches Jaquez through Bona and Clark
    line = herd.iamat("Bailey", "moving", "+10+10", "100")
    for name in ("Bona", "Clark", "Jaquez"):
        herd.wait_stored(name, "moving", line)
    herd.start("Campbell")
    #   New updates reach it again once its links are back
    newer = None
    deadline = time.monotonic() + 10
    attempt = 0
    while time.monotonic() < deadline:
        attempt += 1
        newer = herd.iamat("Jaquez", "moving", "+11+11", f"{200 + attempt}")
        time.sleep(0.1)
        if herd.stored_line("Campbell", "moving") == newer:
            break
    assert herd.stored_line("Campbell", "moving") == newer
    for name in herd.graph:
        herd.wait_stored(name, "moving", newer)
