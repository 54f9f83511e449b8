"""One process per server's state, and a journal that is its path's file:
a second "herd NAME" on the same data_dir exits 1 naming the first's pid
before it touches the log or the journal; a journal replaced under a
running server is a journal failure (IAMATs answered "?"), and what was
acknowledged survives kill -9."""

import os
import shutil
import signal
import subprocess
import time

from conftest import AT_PATTERN, HERD_BIN


def test_a_second_process_for_the_same_server_is_refused(make_herd):
    herd = make_herd(graph={"Bailey": []})
    herd.iamat("Bailey", "kiwi", "+1+1", "1")
    journal = os.path.join(herd.folder, "state", "Bailey.journal")
    before = os.path.getsize(journal)
    second = subprocess.run([HERD_BIN, "--config", herd.config, "Bailey"], capture_output=True, text=True,
                            timeout=30)
    assert second.returncode == 1
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1, second.stderr
    pid = herd.processes["Bailey"].pid
    assert f"Bailey.lock is held by process {pid}" in lines[0] and "herd/data_dir" in lines[0], lines[0]
    #   Nothing of the first's was touched: not its journal, not its log
    assert os.path.getsize(journal) == before
    assert herd.log("Bailey").count("starting server Bailey") == 1
    #   Other ports, same data_dir: refused the same way
    text = open(herd.config).read()
    for ports in (herd.client_ports, herd.bus_ports, herd.http_ports):
        text = text.replace(f":{ports['Bailey']}", f":{ports['Bailey'] + 1}" if ports is herd.client_ports
                            else f":{ports['Bailey']}")
    other = os.path.join(herd.folder, "other.cfg")
    with open(other, "w") as file:
        file.write(text.replace(f"client = 127.0.0.1:{herd.client_ports['Bailey'] + 1}",
                                "client = 127.0.0.1:0"))
    third = subprocess.run([HERD_BIN, "--config", other, "Bailey"], capture_output=True, text=True, timeout=30)
    assert third.returncode == 1 and f"held by process {pid}" in third.stderr
    #   The first goes on, and once it is gone the lock is free again
    assert herd.iamat("Bailey", "kiwi", "+1+1", "2").startswith(b"AT Bailey ")
    herd.kill("Bailey", signal.SIGKILL)
    herd.start("Bailey")
    assert herd.stored_line("Bailey", "kiwi").endswith(b" 2")


def test_a_journal_replaced_under_the_server_is_a_failure_not_a_silent_loss(make_herd):
    herd = make_herd(graph={"Bailey": []}, settings={"herd/fsync": "always"})
    acknowledged = []
    connection = herd.client("Bailey")
    for n in range(100):
        connection.send(f"IAMAT before{n} +1+1 {n + 1}\n")
        line = connection.line()
        assert AT_PATTERN.match(line)
        acknowledged.append(f"before{n}")
    journal = os.path.join(herd.folder, "state", "Bailey.journal")
    os.rename(journal, journal + ".moved")
    os.mkdir(journal)
    #   Within the journal's next check (once a second), IAMATs are refused
    deadline = time.monotonic() + 10
    refused = False
    n = 0
    while time.monotonic() < deadline and not refused:
        n += 1
        connection.send(f"IAMAT during{n} +1+1 {n}\n")
        line = connection.line()
        if line.startswith(b"? "):
            refused = True
        else:
            acknowledged.append(f"during{n}")
            time.sleep(0.05)
    assert refused, "the server never noticed its journal was replaced"
    stats = herd.stats("Bailey")
    assert stats["journal"]["state"] == "failed"
    assert "replaced or removed" in herd.log("Bailey")
    #   The path is a file again: the rewrite after the failure writes the
    #   whole store there, and IAMATs are acknowledged again
    os.rmdir(journal)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        connection.send(f"IAMAT after +1+1 {time.time():.9f}\n")
        line = connection.line()
        if AT_PATTERN.match(line):
            acknowledged.append("after")
            break
        time.sleep(0.1)
    assert acknowledged[-1] == "after", "the journal never recovered"
    connection.close()
    herd.kill("Bailey", signal.SIGKILL)
    os.unlink(journal + ".moved")
    herd.start("Bailey")
    missing = [client for client in acknowledged if herd.stored_line("Bailey", client) is None]
    assert not missing, f"{len(missing)} acknowledged updates lost: {missing[:5]}"
