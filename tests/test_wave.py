"""When every client slot is taken by connections that never send a
command (a wave of idle connections from many addresses, silent or
sending blank lines), the server makes room: a fresh client is served,
connections with no command yet are closed oldest first, then the
idlest, and none with no first command outlives
herd/first_line_timeout."""

import socket
import threading
import time

import pytest

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


def fill_with_wave(herd, addresses, opening, count, keep_alive=b"", max_clients=200):
    """count connections from addresses 127.0.0.2.. in a background
    thread, each sending opening once, then keep_alive every second on
    each for as long as the test runs. Returns (stop, thread, held
    sockets) once the server holds max_clients."""
    port = herd.client_ports["Bailey"]
    held = []
    stop = threading.Event()

    def wave():
        resent = time.monotonic()
        while not stop.is_set():
            for source in range(2, 2 + addresses):
                if len(held) >= count:
                    break
                try:
                    sock = idle_connection(port, f"127.0.0.{source}")
                    sock.sendall(opening)
                    held.append(sock)
                except OSError:
                    pass
            if keep_alive and time.monotonic() - resent > 1:
                for sock in held:
                    try:
                        sock.sendall(keep_alive)
                    except OSError:
                        pass
                resent = time.monotonic()
            time.sleep(0.001)

    waver = threading.Thread(target=wave)
    waver.start()
    deadline = time.monotonic() + 30
    while herd.stats("Bailey")["connections_open"] < max_clients:
        assert time.monotonic() < deadline, "the wave never filled the server"
        time.sleep(0.05)
    return stop, waver, held


def fresh_clients_are_served(herd, count, within):
    for attempt in range(count):
        connection = herd.client("Bailey")
        connection.sock.settimeout(within)
        connection.send(f"IAMAT fresh{attempt} +1+1 {attempt + 1}\n")
        assert AT_PATTERN.match(connection.line()), "a fresh client was not served"
        connection.close()


@pytest.mark.parametrize("addresses", [5, 22])
def test_blank_lines_earn_no_slot(make_herd, addresses):
    """Every slot is taken by connections that sent only blank lines, and
    send them again each second: a blank line is no command, so they make
    room for fresh clients, and none outlives the first-line timeout."""
    herd = make_herd(graph={"Bailey": []}, settings={
        "herd/max_clients": 200, "herd/max_per_address": 200,
        "herd/first_line_timeout": 5, "herd/idle_timeout": 120})
    stop, waver, held = fill_with_wave(herd, addresses, b"\n", 400, keep_alive=b" \r\n")
    try:
        fresh_clients_are_served(herd, 10, within=5)
    finally:
        stop.set()
        waver.join(timeout=60)
    log = herd.log("Bailey")
    assert "closing connections that sent no command yet, oldest first" in log
    assert "no command yet, and the server is full" in log
    #   Whatever stays of the wave is closed by the first-line timeout,
    #   blank lines and all
    deadline = time.monotonic() + 30
    while herd.stats("Bailey")["connections_open"] > 0:
        assert time.monotonic() < deadline, "blank lines kept connections open"
        time.sleep(0.2)
    for sock in held:
        sock.close()


def test_when_every_connection_has_sent_a_command_the_idlest_makes_room(make_herd):
    """A wave whose every connection sent one real command, then idles:
    fresh clients are still served, the idlest closed to make room, and a
    client that keeps talking keeps its slot. (A wave that opens new
    connections as fast as it can may close a fresh client before its
    first line is read: that client tries again.)"""
    herd = make_herd(graph={"Bailey": []}, settings={
        "herd/max_clients": 200, "herd/max_per_address": 200,
        "herd/first_line_timeout": 5, "herd/idle_timeout": 120})
    stop, waver, held = fill_with_wave(herd, 5, b"IAMAT wave +2+2 1\n", 200)
    try:
        keeper = herd.client("Bailey")
        for round in range(10):
            keeper.send(f"IAMAT keeper +1+1 {round + 2}\n")
            assert AT_PATTERN.match(keeper.line())
            fresh_clients_are_served(herd, 2, within=5)
            time.sleep(0.2)
    finally:
        stop.set()
        waver.join(timeout=60)
    assert "the idlest, and the server is full" in herd.log("Bailey")
    assert herd.stats("Bailey")["connections_evicted"] > 0
    for sock in held:
        sock.close()
