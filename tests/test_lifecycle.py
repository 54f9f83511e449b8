"""Start and stop at any moment: a server sent SIGTERM or SIGINT at a
random point of its start-up (keys, zauth, journal replay, the links'
monitors, the client port), from the moment its main blocks the signals,
ends soon, with status 0, or 1 and one line, never an abort or a hang. CI runs HERD_STARTSTOP_TRIES of them (20); more
find rarer moments (the issue that asked for this tried 200)."""

import os
import random
import signal
import subprocess
import time

import pytest

TRIES = int(os.environ.get("HERD_STARTSTOP_TRIES", "20"))


def signals_blocked(pid, sig):
    """Whether process pid blocks sig (its main thread, from /proc)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("SigBlk:"):
                    return bool(int(line.split()[1], 16) & (1 << (sig - 1)))
    except OSError:
        pass
    return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_at_any_moment_of_start_up_stops_cleanly(make_herd, sig):
    herd = make_herd(start=False)
    #   A journal to replay, so start-up has a middle to be caught in
    herd.start("Bailey")
    connection = herd.client("Bailey")
    connection.send("".join(f"IAMAT early{n} +1+1 {n + 1}\n" for n in range(2000)))
    for _ in range(2000):
        connection.line()
    connection.close()
    herd.stop("Bailey")
    random.seed(sig)
    outcomes = {}
    for attempt in range(TRIES):
        process = herd.spawn("Bailey")
        #   The moments that are herd's: from when main blocks the signals
        #   (before that, the loader's and ASan's time, a signal just kills)
        deadline = time.monotonic() + 30
        while not signals_blocked(process.pid, sig) and process.poll() is None:
            assert time.monotonic() < deadline, "the server never blocked the signals"
            time.sleep(0.001)
        time.sleep(random.uniform(0, 0.2))
        process.send_signal(sig)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            raise AssertionError(f"attempt {attempt}: still running 20 s after {sig.name}")
        stderr = process.stderr.read().decode(errors="replace")
        assert "Assertion" not in stderr and "Sanitizer" not in stderr and "runtime error" not in stderr, stderr
        assert process.returncode in (0, 1), (process.returncode, stderr)
        if process.returncode == 1:
            assert len(stderr.strip().splitlines()) == 1, stderr
        outcomes[process.returncode] = outcomes.get(process.returncode, 0) + 1
    print(f"{TRIES} x {sig.name}: {outcomes}")
    assert outcomes.get(0, 0) > TRIES // 2, outcomes
    #   And the journal is whole: the last start replays all 2,000
    herd.start("Bailey")
    assert herd.state("Bailey")["clients"] == 2000


def test_it_tells_systemd_when_it_serves_and_when_it_stops(make_herd, tmp_path):
    """Under systemd (Type=notify) herd says READY=1 once it serves
    clients, and STOPPING=1 when a signal stops it: sd_notify's datagrams
    to $NOTIFY_SOCKET, received here as systemd would."""
    import socket as sockets
    herd = make_herd(graph={"Bailey": []}, start=False)
    path = str(tmp_path / "notify")
    listener = sockets.socket(sockets.AF_UNIX, sockets.SOCK_DGRAM)
    listener.bind(path)
    listener.settimeout(60)
    herd.env["NOTIFY_SOCKET"] = path
    herd.start("Bailey")
    ready = listener.recv(4096).decode()
    assert "READY=1" in ready.split("\n"), ready
    client = herd.client("Bailey")                      #   Serving when it said so
    client.send("IAMAT kiwi +1+1 1\n")
    assert client.line().startswith(b"AT ")
    client.close()
    herd.stop("Bailey")
    stopping = listener.recv(4096).decode()
    assert "STOPPING=1" in stopping.split("\n"), stopping
    listener.close()


def test_under_systemd_the_log_goes_to_the_journal(make_herd):
    """When stderr is systemd's journal ($JOURNAL_STREAM names it), the
    log goes there rather than to a file of its own."""
    herd = make_herd(graph={"Bailey": []}, start=False)
    process = None
    read_end, write_end = os.pipe()
    try:
        status = os.fstat(write_end)
        environment = dict(herd.env, JOURNAL_STREAM=f"{status.st_dev}:{status.st_ino}")
        process = subprocess.Popen(herd.command("Bailey") + ["--config", herd.config, "Bailey"],
                                   stdout=subprocess.DEVNULL, stderr=write_end, env=environment)
        os.close(write_end)
        seen = b""
        deadline = time.monotonic() + 60
        while b"is up" not in seen:
            assert time.monotonic() < deadline, seen
            seen += os.read(read_end, 65536)
        assert b"starting server Bailey" in seen
        assert not os.path.exists(os.path.join(herd.folder, "log", "Bailey.log"))
    finally:
        if process:
            process.terminate()
            process.wait(timeout=30)
        os.close(read_end)
