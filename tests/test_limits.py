"""The bounds a client can run into: max_clients, and the process's own
file descriptor limit (EMFILE), both while the server keeps serving."""

import os
import socket
import time

from conftest import AT_PATTERN, HERD_BIN, Client


def served(connection, client, timeout=5):
    """True if an IAMAT on connection is answered within timeout."""
    connection.sock.settimeout(timeout)
    connection.send(f"IAMAT {client} +1+1 1\n")
    try:
        return bool(AT_PATTERN.match(connection.line()))
    except (socket.timeout, EOFError, ConnectionResetError):
        return False


def wait_connections(herd, condition, timeout=5):
    deadline = time.monotonic() + timeout
    while not condition(herd.stats("Bailey")["connections_open"]):
        assert time.monotonic() < deadline, "connections never settled"
        time.sleep(0.02)


def test_max_clients_makes_room_by_closing_the_idlest(make_herd):
    herd = make_herd(graph={"Bailey": []}, settings={"herd/max_clients": 20})
    wait_connections(herd, lambda open_now: open_now == 0)     #   wait_ready's probe is gone
    held = [herd.client("Bailey") for _ in range(20)]
    #   Each has sent a command, inside0 first: it is the idlest
    for n, connection in enumerate(held):
        assert served(connection, f"inside{n}")
    newcomer = herd.client("Bailey")
    assert served(newcomer, "newcomer")
    assert held[0].closed()
    assert "the idlest, and the server is full: made room (herd/max_clients)" in herd.log("Bailey")
    assert all(served(connection, "still") for connection in held[1:])
    assert herd.stats("Bailey")["connections_open"] == 20
    for connection in held + [newcomer]:
        connection.close()


def test_a_connection_flood_from_one_address_cannot_fill_the_disk_with_log_lines(make_herd):
    """Each connection opened and closed is two log lines; from one
    address, past ten per five seconds they are counted, not written."""
    herd = make_herd(graph={"Bailey": []}, settings={"herd/log_traffic": 0})
    wait_connections(herd, lambda open_now: open_now == 0)
    log_path = os.path.join(herd.folder, "log", "Bailey.log")
    before = os.path.getsize(log_path)
    for _ in range(2000):
        connection = herd.client("Bailey")
        connection.send(b"HELLO\n")
        connection.line()
        connection.close()
    wait_connections(herd, lambda open_now: open_now == 0)
    grown = os.path.getsize(log_path) - before
    print(f"2000 connections grew the log by {grown} bytes")
    assert grown < 64 * 1024, grown
    assert herd.stats("Bailey")["log_suppressed"] > 1000


def test_out_of_file_descriptors_pauses_accepting_and_recovers(make_herd):
    """Under a hard limit of 80 fds (about 60 are the server's own: ZeroMQ
    sockets, actors, the feed) the server runs out after a few dozen
    clients: it pauses accepting (a level-triggered listener would spin),
    keeps serving those it has, and accepts again once fds are free."""
    herd = make_herd(graph={"Bailey": []}, settings={"herd/journal": 0}, start=False)
    herd.command = lambda name: ["prlimit", "--nofile=80:80", "--", HERD_BIN]
    herd.start()
    connections = [herd.client("Bailey") for _ in range(100)]
    time.sleep(0.5)
    assert "pausing accepts" in herd.log("Bailey")
    assert served(connections[0], "early")  #   Those accepted are served
    assert herd.processes["Bailey"].poll() is None
    for connection in connections[:90]:
        connection.close()
    #   The backlog's last connections are taken once fds are free
    assert served(connections[-1], "late", timeout=10)
    assert "accept: resumed" in herd.log("Bailey")
    for connection in connections[90:]:
        connection.close()
    assert served(herd.client("Bailey"), "fresh")


def test_idle_and_slowloris_connections_are_closed_active_ones_kept(make_herd):
    herd = make_herd(graph={"Bailey": []}, settings={"herd/idle_timeout": 1})
    silent = herd.client("Bailey")
    slow = herd.client("Bailey")
    active = herd.client("Bailey")
    deadline = time.monotonic() + 3.5
    while time.monotonic() < deadline:
        try:
            slow.send(b"I")                 #   A byte at a time, never a line
        except (BrokenPipeError, ConnectionResetError):
            pass                            #   Closed already: what we wait for
        assert served(active, "active", timeout=2)
        time.sleep(0.3)
    assert silent.closed() and slow.closed()
    assert served(active, "still")
    log = herd.log("Bailey")
    assert "idle: no command (herd/idle_timeout)" in log
    assert "idle: a partial line, never finished (herd/idle_timeout)" in log
    assert herd.stats("Bailey")["connections_idle_closed"] == 2


def test_one_address_cannot_take_every_connection(make_herd):
    herd = make_herd(graph={"Bailey": []}, settings={"herd/max_per_address": 5,
                                                     "herd/idle_timeout": 0})
    wait_connections(herd, lambda open_now: open_now == 0)
    port = herd.client_ports["Bailey"]

    def connect_from(source):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))
        connection = Client.__new__(Client)
        connection.sock, connection.buffer = sock, b""
        return connection

    held = [connect_from("127.0.0.1") for _ in range(5)]
    assert served(held[-1], "fifth")
    assert connect_from("127.0.0.1").closed()           #   A sixth from there: refused
    assert served(connect_from("127.0.0.2"), "elsewhere")   #   Another host: served
    assert "refused a connection from 127.0.0.1: 5 open from there" in herd.log("Bailey")
    assert herd.stats("Bailey")["connections_refused_per_address"] == 1
    for connection in held:
        connection.close()


def test_output_of_all_clients_together_is_bounded(make_herd):
    """Clients that send but never read each keep under max_pending, but
    together pass max_output_total: the biggest holders are dropped."""
    herd = make_herd(graph={"Bailey": []}, settings={
        "herd/max_pending": 1024 * 1024, "herd/max_output_total": 1024 * 1024,
        "herd/log_traffic": 0})
    greedy = []
    for number in range(4):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)     #   Reads nothing
        sock.connect(("127.0.0.1", herd.client_ports["Bailey"]))
        greedy.append(sock)
    batch = "".join(f"IAMAT greedy{n} +1+1 {n + 1}\n" for n in range(2000)).encode()
    deadline = time.monotonic() + 20
    while herd.stats("Bailey")["clients_dropped_output_total"] == 0 and time.monotonic() < deadline:
        for sock in greedy:
            try:
                sock.send(batch, socket.MSG_DONTWAIT)
            except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                pass
        time.sleep(0.05)
    stats = herd.stats("Bailey")
    assert stats["clients_dropped_output_total"] >= 1, stats
    assert stats["output_bytes"] <= 1024 * 1024
    assert "over herd/max_output_total" in herd.log("Bailey")
    assert served(herd.client("Bailey"), "polite")
    for sock in greedy:
        sock.close()
