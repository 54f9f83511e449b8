"""No update lost: catch-up after restarts, the journal on disk, gaps.
Every test ends by asserting that the servers' stores are identical,
through each server's STATE answer (size and digest)."""

import os
import signal
import threading
import time

import pytest

from conftest import AT_PATTERN


class Traffic:
    """IAMATs at some servers from a background thread, bounded in count."""

    def __init__(self, herd, names, limit=5000):
        self.herd, self.names, self.limit = herd, names, limit
        self.sent = 0
        self.running = True
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        connections = {name: self.herd.client(name) for name in self.names}
        while self.running and self.sent < self.limit:
            for name, connection in connections.items():
                self.sent += 1
                connection.send(f"IAMAT flow{self.sent % 300} +1+1 {time.time():.9f}\n")
                assert AT_PATTERN.match(connection.line())
            time.sleep(0.002)
        for connection in connections.values():
            connection.close()

    def stop(self):
        self.running = False
        self.thread.join(timeout=30)
        assert self.sent > 0


def test_kill_9_while_updates_flow_then_restart_catches_up(herd):
    traffic = Traffic(herd, ["Bailey", "Jaquez"])
    time.sleep(0.5)
    herd.kill("Campbell", signal.SIGKILL)
    time.sleep(1.0)                     #   Updates it misses
    traffic.stop()
    herd.start("Campbell", wait=False)
    herd.wait_ready("Campbell")
    #   How fast is make bench's business (catch-up times); here, a
    #   generous deadline, so a busy machine passes too
    states = herd.wait_converged(timeout=60)
    assert states["Campbell"]["clients"] >= 300
    assert states["Campbell"]["caught_up"]
    assert "sync: caught up with" in herd.log("Campbell")


def test_restart_with_data_dir_deleted_rebuilds_from_neighbours(herd):
    for n in range(200):
        herd.iamat(["Bailey", "Clark"][n % 2], f"keep{n}", "+2+2", f"{1000 + n}")
    herd.wait_converged()
    herd.stop("Bona")
    journal = os.path.join(herd.folder, "state", "Bona.journal")
    assert os.path.getsize(journal) > 0
    os.unlink(journal)
    herd.start("Bona", wait=False)
    herd.wait_ready("Bona")
    states = herd.wait_converged(timeout=5)
    assert states["Bona"]["clients"] == states["Bailey"]["clients"] >= 200


@pytest.mark.parametrize("policy", ["always", "everysec", "no"])
def test_kill_9_keeps_every_acknowledged_update(make_herd, policy):
    single = make_herd(graph={"Bailey": []}, settings={"herd/fsync": policy})
    connection = single.client("Bailey")
    lines = {}
    syncs_before = single.stats("Bailey")["journal"]["syncs"]
    started = time.monotonic()
    for n in range(500):
        connection.send(f"IAMAT acked{n} +3+3 {2000 + n}\n")
        lines[f"acked{n}"] = connection.line()
    before = single.state("Bailey")
    syncs_now = single.stats("Bailey")["journal"]["syncs"]
    seconds = time.monotonic() - started
    #   What tells the policies apart: fdatasync calls. "always" syncs every
    #   command before its reply (one at a time here), "everysec" once a
    #   second at most, "no" never (the kernel writes when it likes)
    syncs = syncs_now - syncs_before
    if policy == "always":
        assert syncs >= 500, syncs
    elif policy == "everysec":
        while syncs == 0 and time.monotonic() - started < 3:
            time.sleep(0.1)
            syncs = single.stats("Bailey")["journal"]["syncs"] - syncs_before
        seconds = time.monotonic() - started
        assert 0 < syncs <= seconds + 2, (syncs, seconds)
    else:
        time.sleep(1.5)             #   Past a tick of the one-second timer
        syncs = single.stats("Bailey")["journal"]["syncs"] - syncs_before
        assert syncs == 0, syncs
    single.kill("Bailey", signal.SIGKILL)
    single.start("Bailey")
    after = single.state("Bailey")
    assert (after["clients"], after["digest"]) == (before["clients"], before["digest"])
    for client in ("acked0", "acked499"):
        assert single.stored_line("Bailey", client) == lines[client]


def journal_records(herd, name):
    with open(os.path.join(herd.folder, "state", f"{name}.journal"), "rb") as file:
        return file.read().split(b"\n")


def test_truncated_journal_tail_is_reported_and_cut(make_herd):
    single = make_herd(graph={"Bailey": []})
    for n in range(10):
        single.iamat("Bailey", f"t{n}", "+4+4", f"{n + 1}")
    single.stop("Bailey")
    path = os.path.join(single.folder, "state", "Bailey.journal")
    size = os.path.getsize(path)
    os.truncate(path, size - 7)         #   The last record loses its end
    single.start("Bailey")
    state = single.state("Bailey")
    assert state["clients"] == 9
    assert single.stored_line("Bailey", "t9") is None
    assert single.stored_line("Bailey", "t8") is not None
    log = single.log("Bailey")
    assert "is torn" in log and "cut off" in log
    #   New records after the cut are whole and survive the next restart
    single.iamat("Bailey", "t9", "+4+4", "10")
    single.stop("Bailey")
    single.start("Bailey")
    assert single.state("Bailey")["clients"] == 10


def test_corrupt_journal_record_is_skipped_not_trusted(make_herd):
    single = make_herd(graph={"Bailey": []})
    for n in range(10):
        single.iamat("Bailey", f"c{n}", "+5+5", f"{n + 1}")
    single.stop("Bailey")
    path = os.path.join(single.folder, "state", "Bailey.journal")
    records = journal_records(single, "Bailey")
    #   Change a digit of record 5's coordinates: its checksum no longer fits
    records[4] = records[4].replace(b"+5+5", b"+6+5")
    with open(path, "wb") as file:
        file.write(b"\n".join(records))
    single.start("Bailey")
    assert single.state("Bailey")["clients"] == 9
    assert single.stored_line("Bailey", "c4") is None      #   Never the wrong data
    assert single.stored_line("Bailey", "c5") is not None
    assert "record 5 is corrupt, skipped" in single.log("Bailey")


def fnv1a_32(data):
    value = 0x811C9DC5
    for byte in data:
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


def test_a_journal_of_the_old_format_replays_and_goes_on_in_the_new(make_herd):
    """Journals written before XXH3 (FNV-1a 32 checksums, a space after
    them) replay as they are; new records go after them with a colon, and
    the mixed file replays whole"""
    single = make_herd(graph={"Bailey": []}, start=False)
    lines = [f"AT Bailey +0.1 old{n} +{n}+1 {n + 1}".encode() for n in range(10)]
    path = os.path.join(single.folder, "state", "Bailey.journal")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as file:
        file.write(b"".join(b"%08x %s\n" % (fnv1a_32(line), line) for line in lines))
    single.start("Bailey")
    assert single.state("Bailey")["clients"] == 10
    for n, line in enumerate(lines):
        assert single.stored_line("Bailey", f"old{n}") == line
    assert "corrupt" not in single.log("Bailey")
    new_line = single.iamat("Bailey", "new0", "+2+2", "20")
    single.stop("Bailey")
    records = journal_records(single, "Bailey")
    assert records[9][8:9] == b" " and records[10][8:9] == b":" and records[10][9:] == new_line
    single.start("Bailey")
    assert single.state("Bailey")["clients"] == 11
    assert single.stored_line("Bailey", "new0") == new_line


def test_burst_of_100000_updates_converges_everywhere(make_herd):
    herd = make_herd(settings={"herd/log_traffic": 0})
    connection = herd.client("Bailey")
    total = 100000
    batch = 5000
    received = 0
    for start in range(0, total, batch):
        connection.send("".join(f"IAMAT burst{n % 20000} +7+7 {1000000 + n}\n"
                                for n in range(start, start + batch)))
        for _ in range(batch):
            connection.line()
            received += 1
    assert received == total
    states = herd.wait_converged(timeout=30)
    assert states["Clark"]["clients"] >= 20000


def test_hwm_drops_are_seen_as_gaps_and_recovered(make_herd):
    """ZeroMQ drops past the HWM: Bona, paused for less than its silence
    time, misses batches, sees the numbering skip, and catches up by that
    gap (not by silence, which a long heartbeat keeps away)."""
    herd = make_herd(graph={"Bailey": ["Bona"], "Bona": ["Bailey"]},
                     settings={"herd/log_traffic": 0, "bus/hwm": 100, "bus/heartbeat": 10000})
    paused = herd.processes["Bona"]
    paused.send_signal(signal.SIGSTOP)
    try:
        #   A write a pass, a full batch (32 KiB) each: past the HWM and
        #   what the kernel buffers
        connection = herd.client("Bailey")
        padding = "x" * 200
        for start in range(0, 600 * 128, 128):
            connection.send("".join(f"IAMAT gap{n}{padding} +8+8 {n + 1}\n" for n in range(start, start + 128)))
            for _ in range(128):
                connection.line()
    finally:
        paused.send_signal(signal.SIGCONT)
    states = herd.wait_converged(timeout=60)
    assert states["Bona"]["clients"] == 600 * 128
    log = herd.log("Bona")
    assert "bus: gap in Bailey's batches" in log
    assert "nothing from Bailey" not in log


def test_a_frozen_neighbour_stalls_nobody_and_is_healed_after(make_herd):
    """SIGSTOP a neighbour: it reads nothing, so Bailey's PUB fills to its
    HWM and drops; clients of Bailey never wait on it, and once it thaws
    the gap in Bailey's numbering brings a catch-up."""
    herd = make_herd(graph={"Bailey": ["Bona"], "Bona": ["Bailey"]},
                     settings={"herd/log_traffic": 0, "bus/hwm": 1000})
    frozen = herd.processes["Bona"]
    frozen.send_signal(signal.SIGSTOP)
    try:
        connection = herd.client("Bailey")
        started = time.monotonic()
        for start in range(0, 50000, 5000):
            connection.send("".join(f"IAMAT frozen{n} +9+9 {n + 1}\n" for n in range(start, start + 5000)))
            for _ in range(5000):
                connection.line()
        elapsed = time.monotonic() - started
        assert elapsed < 120, elapsed               #   Bounded: nobody waited on Bona
        assert herd.state("Bailey")["clients"] == 50000
    finally:
        frozen.send_signal(signal.SIGCONT)
    states = herd.wait_converged(timeout=30)
    assert states["Bona"]["clients"] == 50000
