"""When every client slot is taken by connections that never send a
line (a wave of idle connections from many addresses), the server makes
room: a fresh client is served, connections with no line yet are closed
oldest first, and none with no first line outlives
herd/first_line_timeout."""

import socket
import threading
import time

from conftest import AT_PATTERN


def idle_connection(port, source):
    sock = socket.socket()
    sock.bind((source, 0))
    sock.settimeout(5)
    sock.connect(("127.0.0.1", port))
    return sock


def test_a_fresh_client_is_served_while_idle_connections_fill_every_slot(make_herd):
    herd = make_herd(graph={"Bailey": []}, settings={"herd/max_clients": 200, "herd/max_per_address": 60,
                                                     "herd/first_line_timeout": 30})
    port = herd.client_ports["Bailey"]
    held = []
    stop = threading.Event()

    def wave():
        #   Five addresses, 60 connections each, again and again: 300 > 200
        while not stop.is_set() and len(held) < 3000:
            for source in range(2, 7):
                try:
                    held.append(idle_connection(port, f"127.0.0.{source}"))
                except OSError:
                    pass
            time.sleep(0.001)

    waver = threading.Thread(target=wave)
    waver.start()
    try:
        deadline = time.monotonic() + 30
        while herd.stats("Bailey")["connections_open"] < 200:
            assert time.monotonic() < deadline, "the wave never filled the server"
            time.sleep(0.05)
        served = []
        for attempt in range(5):
            started = time.monotonic()
            connection = herd.client("Bailey")
            connection.send(f"IAMAT fresh{attempt} +1+1 {attempt + 1}\n")
            assert AT_PATTERN.match(connection.line())
            served.append(time.monotonic() - started)
            connection.close()
        print(f"fresh clients served during the wave in {[f'{s * 1000:.1f} ms' for s in served]}")
        #   A client that sent a line keeps its slot while the wave goes on
        keeper = herd.client("Bailey")
        keeper.send("IAMAT keeper +1+1 1\n")
        assert AT_PATTERN.match(keeper.line())
        time.sleep(1)
        keeper.send("IAMAT keeper +1+1 2\n")
        assert AT_PATTERN.match(keeper.line())
    finally:
        stop.set()
        waver.join(timeout=60)
    stats = herd.stats("Bailey")
    assert stats["connections_evicted"] > 0, stats
    assert "closing connections that sent no command yet, oldest first" in herd.log("Bailey")
    for sock in held:
        sock.close()


def test_a_connection_with_no_first_line_is_closed_after_first_line_timeout(make_herd):
    herd = make_herd(graph={"Bailey": []}, settings={"herd/first_line_timeout": 1, "herd/idle_timeout": 120})
    silent = idle_connection(herd.client_ports["Bailey"], "127.0.0.1")
    talker = herd.client("Bailey")
    talker.send("IAMAT talker +1+1 1\n")
    assert AT_PATTERN.match(talker.line())
    silent.settimeout(10)
    assert silent.recv(1) == b""                    #   Closed by the server
    talker.send("IAMAT talker +1+1 2\n")            #   The other one stays
    assert AT_PATTERN.match(talker.line())
    assert "no command within herd/first_line_timeout" in herd.log("Bailey")
