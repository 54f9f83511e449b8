"""Five real servers flooding updates over ZeroMQ (docs/PROTOCOL.md sections 2-3)."""

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request

import zmq
import zmq.auth

from conftest import AT_PATTERN, HERD_BIN, BackgroundIamats, Client, bus_heartbeat


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


def feed_socket(herd, name, prefix=b""):
    """A monitor's SUB on a server's update feed, with the monitor key."""
    sub = herd.curve_client(zmq.Context.instance().socket(zmq.SUB), name)
    sub.setsockopt(zmq.SUBSCRIBE, prefix)
    sub.setsockopt(zmq.RCVTIMEO, 200)
    sub.connect(f"tcp://127.0.0.1:{herd.feed_ports[name]}")
    return sub


def receive(sub, deadline):
    """The next message on a SUB socket, or None at the deadline."""
    while time.monotonic() < deadline:
        try:
            return sub.recv_multipart()
        except zmq.Again:
            continue
    return None


def test_the_feed_carries_every_update_a_server_accepts(herd):
    sub = feed_socket(herd, "Campbell")
    #   Slow joiner: keep updating until the first one arrives
    frames = None
    for attempt in range(100):
        herd.iamat("Clark", "watched", "+5-5", f"{9000 + attempt}")
        frames = receive(sub, time.monotonic() + 0.2)
        if frames:
            break
    assert frames, "no update reached the feed's subscriber"
    #   Two frames: the client id, then the AT line as clients see it
    assert len(frames) == 2 and frames[0] == b"watched"
    assert AT_PATTERN.match(frames[1]) and frames[1].startswith(b"AT Clark ")
    #   Later updates arrive too, from clients of its own and of others
    sent = herd.iamat("Bailey", "watched", "+6-6", "99999")
    mine = herd.iamat("Campbell", "local", "+6-6", "1")
    seen = set()
    deadline = time.monotonic() + 10
    while {sent, mine} - seen and time.monotonic() < deadline:
        frames = receive(sub, deadline)
        if frames:
            assert len(frames) == 2 and AT_PATTERN.match(frames[1]).group(3) == frames[0]
            seen.add(frames[1])
    assert {sent, mine} <= seen
    sub.close(linger=0)


def test_a_feed_prefix_subscription_gets_exactly_its_client(herd):
    filtered = feed_socket(herd, "Campbell", b"only.me")
    got = []
    for attempt in range(100):
        herd.iamat("Clark", "other", "+5-5", f"{20000 + attempt}")
        herd.iamat("Clark", "only.me", "+5-5", f"{20000 + attempt}")
        frames = receive(filtered, time.monotonic() + 0.2)
        if frames:
            got.append(frames)
            break
    assert got, "the filtered subscriber heard nothing"
    #   Many more of both, from two servers: only only.me's arrive, all of them
    expected = set()
    for attempt in range(50):
        herd.iamat("Bailey", "other", "+5-5", f"{30000 + attempt}")
        expected.add(herd.iamat("Jaquez", "only.me", "+5-5", f"{30000 + attempt}.5"))
    deadline = time.monotonic() + 10
    heard = set()
    while expected - heard and time.monotonic() < deadline:
        frames = receive(filtered, deadline)
        if frames:
            got.append(frames)
            heard.add(frames[1])
    assert expected <= heard
    assert all(frames[0] == b"only.me" and AT_PATTERN.match(frames[1]).group(3) == b"only.me"
               for frames in got)
    filtered.close(linger=0)


def test_a_monitor_that_joins_mid_stream_gets_whole_updates(herd):
    """While Bailey takes thousands of updates a second, monitors join and
    leave Bona's feed: each message they get is one whole update, and the
    herd loses nothing meanwhile."""
    traffic = BackgroundIamats(herd, "Bailey", "mid", limit=10000)
    messages = 0
    try:
        for attempt in range(10):
            sub = feed_socket(herd, "Bona")
            deadline = time.monotonic() + 0.5
            while time.monotonic() < deadline:
                frames = receive(sub, deadline)
                if frames:
                    assert len(frames) == 2, frames
                    match = AT_PATTERN.match(frames[1])
                    assert match and match.group(3) == frames[0], frames
                    messages += 1
            sub.close(linger=0)
    finally:
        acknowledged = traffic.stop()
    assert messages > 0, "no monitor heard anything"
    states = herd.wait_converged(timeout=60)
    assert all(state["clients"] == len(acknowledged) for state in states.values()), states


def test_neighbours_get_a_pass_in_one_batch(herd):
    """One write of 200 IAMATs is one pass at Bailey: its neighbours get the
    updates in a few bus messages, not 200, and numbered in order."""
    bus = herd.curve_client(zmq.Context.instance().socket(zmq.SUB), "Bailey")
    bus.setsockopt(zmq.SUBSCRIBE, b"")
    bus.setsockopt(zmq.RCVTIMEO, 200)
    bus.connect(f"tcp://127.0.0.1:{herd.bus_ports['Bailey']}")
    #   Slow joiner: wait for a heartbeat first
    first = receive(bus, time.monotonic() + 10)
    assert first and first[0].startswith(b"HEARTBEAT/2 Bailey ")
    connection = herd.client("Bailey")
    connection.send("".join(f"IAMAT batch{index} +1+1 {index + 1}\n" for index in range(200)))
    replies = {connection.line() for _ in range(200)}
    lines, batches, sequences = set(), 0, []
    deadline = time.monotonic() + 10
    while len(lines) < 200 and time.monotonic() < deadline:
        frames = receive(bus, deadline)
        if not frames or frames[0].startswith(b"HEARTBEAT"):
            continue
        assert len(frames) == 1
        head, _, body = frames[0].partition(b"\n")
        kind, server, sequence, count = head.split(b" ")
        assert kind == b"BATCH/2" and server == b"Bailey"
        batch = body.split(b"\n")
        assert batch[-1] == b"" and len(batch) - 1 == int(count)
        lines.update(batch[:-1])
        sequences.append(int(sequence))
        batches += 1
    assert lines == replies
    assert batches < 20, f"{batches} messages for one pass of 200 updates"
    assert sequences == list(range(sequences[0], sequences[0] + batches))
    bus.close(linger=0)


def test_a_flood_ends_each_server_stores_and_sends_an_update_once(herd):
    """Newer-wins ends every flood: an echo of what a server holds is not
    sent on. One update reaches all five, each publishes it once, and each
    server hears it from every neighbour that stored it (12 in all)."""
    before = {name: herd.stats(name)["updates"] for name in herd.graph}
    line = herd.iamat("Bailey", "echo", "+1+1", "4242")
    for name in herd.graph:
        herd.wait_stored(name, "echo", line)
    deadline = time.monotonic() + 10
    while True:
        after = {name: herd.stats(name)["updates"] for name in herd.graph}
        out = sum(after[name]["out"] - before[name]["out"] for name in herd.graph)
        received = sum(after[name]["heard"] - before[name]["heard"] for name in herd.graph)
        links = sum(len(neighbours) for neighbours in herd.graph.values())
        if received == links or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert out == 5, after
    assert received == links, after
    time.sleep(0.5)
    again = {name: herd.stats(name)["updates"] for name in herd.graph}
    assert sum(again[name]["out"] - before[name]["out"] for name in herd.graph) == 5


def test_bus_drops_malformed_messages(make_herd):
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
        pub.send(b"junk")
        pub.send_multipart([b"evil", b"AT Bona +0.1 evil +1+1 2"])            # the old, per-update format
        pub.send(b"BATCH/2 Bona %d 2\nAT Bona +0.1 short +1+1 2\n" % (3 * attempt))   # count is wrong
        pub.send(b"BATCH/2 Bona %d 2\nAT Bona nope bad +1+1 2\n%s\n" % (3 * attempt + 1, good))
        pub.send(b"HEARTBEAT/2 Bona %d" % (3 * attempt + 2))
        time.sleep(0.05)
        if herd.stored_line("Bailey", "goodclient") == good:
            break
    assert herd.stored_line("Bailey", "goodclient") == good
    for client in ("evil", "short", "bad"):
        assert herd.stored_line("Bailey", client) is None
    log = herd.log("Bailey")
    assert "dropped a malformed message from Bona" in log
    assert "dropped a malformed line from Bona" in log
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


def test_a_herd_on_ipv6_loopback(make_herd):
    """Every endpoint on [::1]: the client port, the HTTP endpoint and the
    ZeroMQ ones (bus, sync, admin, feed; libzmq needs ZMQ_IPV6 for them).
    Two servers link, an IAMAT at one is known at the other, and herd
    --state asks over [::1]."""
    herd = make_herd(graph={"Bailey": ["Bona"], "Bona": ["Bailey"]}, start=False)
    herd.hosts = {name: "[::1]" for name in herd.graph}
    herd.write_config()
    processes = [herd.spawn(name) for name in herd.graph]
    try:
        deadline = time.monotonic() + 60
        for name in herd.graph:
            while True:
                try:
                    socket.create_connection(("::1", herd.client_ports[name]), timeout=1).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, f"{name} never listened on [::1]"
                    assert all(process.poll() is None for process in processes), \
                        [process.stderr.read().decode() for process in processes if process.poll() is not None]
                    time.sleep(0.1)
        at_bona = None
        n = 0
        while not at_bona:
            assert time.monotonic() < deadline, "Bona never heard of kiwi"
            n += 1
            bailey = Client(herd.client_ports["Bailey"], host="::1")
            bailey.send(f"IAMAT kiwi +1+1 {n}\n")
            assert AT_PATTERN.match(bailey.line())
            bailey.close()
            bona = Client(herd.client_ports["Bona"], host="::1")
            bona.send("WHATSAT kiwi 1 1\n")
            first = bona.line()
            if first.startswith(b"AT "):
                at_bona = first
            bona.close()
            time.sleep(0.2)
        state = subprocess.run([HERD_BIN, "--config", herd.config, "--state", "Bona"],
                               capture_output=True, text=True, timeout=30)
        assert state.returncode == 0, state.stderr
        assert json.loads(state.stdout)["links"]["Bailey"]["up"] is True
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=30)


def test_a_neighbour_of_another_bus_format_is_a_link_of_its_own(make_herd):
    """An old release at Bona's address (bus format 1: no format in its
    heads): Bailey reads nothing of it, and says so in STATE, /metrics and
    its log, once; the link comes back when Bona speaks format 2"""
    herd = make_herd(graph={"Bailey": ["Bona"], "Bona": ["Bailey"]}, start=False)
    pub = zmq.Context.instance().socket(zmq.PUB)
    public, secret = zmq.auth.load_certificate(os.path.join(herd.keys, "secret", "Bona.key_secret"))
    pub.curve_server, pub.curve_publickey, pub.curve_secretkey = True, public, secret
    pub.setsockopt(zmq.LINGER, 0)
    pub.bind(f"tcp://127.0.0.1:{herd.bus_ports['Bona']}")
    herd.start("Bailey")
    try:
        deadline = time.monotonic() + 30
        sequence = 0
        while herd.state("Bailey")["links"]["Bona"]["state"] != "incompatible":
            assert time.monotonic() < deadline, herd.state("Bailey")["links"]["Bona"]
            sequence += 1
            pub.send(b"HEARTBEAT Bona %d" % sequence)
            pub.send(b"BATCH Bona %d 1\nAT Bona +0.1 old +1+1 2\n" % sequence)
            time.sleep(0.1)
        link = herd.state("Bailey")["links"]["Bona"]
        assert link["up"] is False and link["incompatible"] is True and link["format"] == 1
        assert herd.stored_line("Bailey", "old") is None
        with urllib.request.urlopen(f"http://127.0.0.1:{herd.http_ports['Bailey']}/metrics", timeout=10) as reply:
            assert 'herd_link_incompatible{server="Bailey",neighbour="Bona"} 1' in reply.read().decode()
        for _ in range(5):
            pub.send(b"HEARTBEAT Bona %d" % sequence)
            time.sleep(0.05)
        assert herd.log("Bailey").count("Bona speaks bus format 1, this server 2") == 1
        #   The same release again: understood
        deadline = time.monotonic() + 30
        while herd.state("Bailey")["links"]["Bona"]["incompatible"]:
            assert time.monotonic() < deadline
            sequence += 1
            pub.send(bus_heartbeat("Bona", sequence))
            time.sleep(0.1)
        assert herd.state("Bailey")["links"]["Bona"]["format"] == 2
    finally:
        pub.close()
