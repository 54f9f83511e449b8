"""The bounds a client can run into: max_clients, and the process's own
file descriptor limit (EMFILE), both while the server keeps serving."""

import socket
import time

from conftest import AT_PATTERN, HERD_BIN


def served(connection, client, timeout=5):
    """True if an IAMAT on connection is answered within timeout."""
    connection.sock.settimeout(timeout)
    connection.send(f"IAMAT {client} +1+1 1\n")
    try:
        return bool(AT_PATTERN.match(connection.line()))
    except (socket.timeout, EOFError, ConnectionResetError):
        return False


def test_max_clients_refuses_past_the_bound_and_serves_again_below(make_herd):
    herd = make_herd(graph={"Bailey": []}, settings={"herd/max_clients": 20})
    held = [herd.client("Bailey") for _ in range(20)]
    assert served(held[-1], "inside")
    refused = herd.client("Bailey")
    assert refused.closed()                 #   Closed with no reply
    assert "refused a connection: 20 clients open (herd/max_clients)" in herd.log("Bailey")
    held.pop().close()
    deadline = time.monotonic() + 5
    while herd.state("Bailey")["connections"] >= 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert served(herd.client("Bailey"), "again")
    for connection in held:
        connection.close()


def test_out_of_file_descriptors_pauses_accepting_and_recovers(make_herd):
    """Under a hard limit of 64 fds the server runs out after a few dozen
    clients: it pauses accepting (a level-triggered listener would spin),
    keeps serving those it has, and accepts again once fds are free."""
    herd = make_herd(graph={"Bailey": []}, settings={"herd/journal": 0}, start=False)
    herd.command = lambda name: ["prlimit", "--nofile=64:64", "--", HERD_BIN]
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
