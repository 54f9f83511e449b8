"""The herd command: flags, config errors, port conflicts, clean shutdown."""

import json
import os
import re
import signal
import socket
import subprocess
import time

import pytest

from conftest import HERD_BIN


def run(*args, cwd=None):
    return subprocess.run([HERD_BIN, *args], capture_output=True, text=True, timeout=20, cwd=cwd)


def one_line_error(result):
    assert result.returncode == 1, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("herd: ")
    return lines[0]


def test_help_and_version():
    result = run("--help")
    assert result.returncode == 0
    assert result.stdout.startswith("Usage: herd [OPTIONS] NAME")
    assert "--config" in result.stdout
    result = run("--version")
    assert result.returncode == 0 and result.stdout.startswith("herd ")
    assert run().returncode == 2
    assert run("--bogus", "Bailey").returncode == 2


def test_default_config_is_the_five_server_graph(tmp_path):
    repository = os.path.join(os.path.dirname(__file__), "..")
    error = one_line_error(run("Nobody", cwd=repository))
    assert error == "herd: no server named 'Nobody' in herd.cfg (it lists: Bailey Bona Campbell Clark Jaquez)"


def test_unknown_server_name(make_herd):
    herd = make_herd(start=False)
    assert "no server named 'Zed'" in one_line_error(run("--config", herd.config, "Zed"))


def test_unreadable_config(tmp_path):
    error = one_line_error(run("--config", str(tmp_path / "missing.cfg"), "Bailey"))
    assert "missing.cfg: cannot read config: No such file or directory" in error


@pytest.mark.parametrize("text, expected", [
    ("servers\n    A\n      client = 1\n", "bad.cfg:3: not valid ZPL"),
    ("herd\n    max_line = huge\n", 'herd/max_line = "huge": expected a whole number'),
    ("herd\n    max_lines = 9\n", "unknown setting herd/max_lines"),
    ("servers\n    A\n        client = 127.0.0.1:1\n        bus = tcp://127.0.0.1:2\n"
     "        neighbours = B\n", "neighbour B is not a server"),
    ("servers\n    A\n        client = 127.0.0.1:1\n        bus = tcp://127.0.0.1:2\n"
     "        neighbours = B\n    B\n        client = 127.0.0.1:3\n        bus = tcp://127.0.0.1:4\n",
     "graph is not symmetric: A lists B as a neighbour but B does not list A"),
    ("servers\n    A\n        client = localhost\n        bus = tcp://127.0.0.1:2\n", "expected HOST:PORT"),
    #   These two once spun at 100% CPU instead of answering
    ('herd\n    fsync = ""\n', 'herd/fsync = "": expected one of: always everysec no'),
    ("places\n    provider\n", 'places/provider = "": expected one of'),
    ("herd\n    log_dir = x\0y\n", "config holds a NUL byte"),
    ("herd\n" + "#" * 2000000 + "\n", "config is over 1048576 bytes"),
#   Short ids: pytest puts a test's id in the environment (PYTEST_CURRENT_TEST),
#   and a 2 MB one would leave no room for the server's exec
], ids=lambda value: value.splitlines()[0][:30] if value.strip() else repr(value))
def test_invalid_config_says_where(tmp_path, text, expected):
    path = tmp_path / "bad.cfg"
    path.write_text(text)
    for request in ([], ["--state"], ["--list"]):
        #   One line within the run's timeout, for the server and for the asker
        error = one_line_error(run("--config", str(path), *request, *([] if request == ["--list"] else ["A"])))
        assert expected in error
        assert str(path) in error


def test_unreadable_config_folder(tmp_path):
    error = one_line_error(run("--config", str(tmp_path), "Bailey"))
    assert "cannot read config: it is a folder" in error


def test_list_prints_the_server_names(make_herd):
    herd = make_herd(start=False)
    result = run("--config", herd.config, "--list")
    assert result.returncode == 0, result
    assert result.stdout.split() == list(herd.graph)


def test_client_port_in_use(make_herd):
    herd = make_herd(graph={"Bailey": []}, start=False)
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind(("127.0.0.1", herd.client_ports["Bailey"]))
    blocker.listen()
    error = one_line_error(run("--config", herd.config, "Bailey"))
    assert error == (f"herd: Bailey: cannot listen on 127.0.0.1:{herd.client_ports['Bailey']} "
                     f"(servers/Bailey/client in {herd.config}): Address already in use")
    blocker.close()


def test_bus_port_in_use(make_herd):
    herd = make_herd(graph={"Bailey": []}, start=False)
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", herd.bus_ports["Bailey"]))
    blocker.listen()
    error = one_line_error(run("--config", herd.config, "Bailey"))
    assert "cannot bind the bus to tcp://127.0.0.1:" in error and f"(servers/Bailey/bus in {herd.config})" in error
    assert "Address already in use" in error
    blocker.close()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_cleanly_and_logs(make_herd, sig):
    herd = make_herd(graph={"Bailey": []})
    connection = herd.client("Bailey")
    connection.send(b"IAMAT kiwi +1+1 1\n")
    connection.line()
    process = herd.kill("Bailey", sig)
    assert process.returncode == 0
    assert connection.closed()
    log = herd.log("Bailey")
    for expected in (r"starting server Bailey", r"client \d+ 127\.0\.0\.1:\d+ opened",
                     r"client \d+ < IAMAT kiwi \+1\+1 1 > AT Bailey \+",
                     r"signal received, shutting down",
                     r"closed: server shutting down", r"server Bailey stopped"):
        assert re.search(expected, log), expected


def test_traffic_log_records_every_line_in_and_out(make_herd):
    herd = make_herd(graph={"Bailey": []}, settings={"places/provider": "none"})
    connection = herd.client("Bailey")
    connection.send(b"IAMAT kiwi +1+1 5\nIAMAT kiwi +1+1 4\nHELLO \x01there\nWHATSAT kiwi 5 2\n")
    replies = [connection.line(), connection.line(), connection.line(), connection.until_blank()]
    at = replies[0].decode()
    log = herd.log("Bailey")
    #   An IAMAT and its reply on one line, as the client saw them
    #   Times as Redis and NATS write them: four-digit year, milliseconds, zone
    assert re.search(r"I: \(Bailey\) 20\d\d-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} [+-]\d{4} client (\d+) < IAMAT kiwi \+1\+1 5 > "
                     + re.escape(at) + "\n", log), log
    assert re.search(r"client \d+ < IAMAT kiwi \+1\+1 4 > AT Bailey \S+ kiwi \+1\+1 4 +"
                     r"\(not newer than the stored one: kept that\)", log), log
    assert re.search(r"client \d+ > \? HELLO \\x01there +\(", log), log
    assert re.search(r"client \d+ < WHATSAT kiwi 5 2\n", log), log
    assert re.search(r"client \d+ > " + re.escape(at) + r" \+ places JSON \(\d+ bytes\)", log), log
    #   Off: none of it
    quiet = make_herd(graph={"Bailey": []}, settings={"herd/log_traffic": 0})
    quiet.iamat("Bailey", "kiwi", "+1+1", "5")
    assert "IAMAT" not in quiet.log("Bailey")


def test_json_log_format_one_object_a_line(make_herd):
    herd = make_herd(graph={"Bailey": []}, settings={"herd/log_format": "json"})
    herd.iamat("Bailey", "kiwi", "+1+1", "5")
    herd.stop("Bailey")
    lines = herd.log("Bailey").splitlines()
    objects = [json.loads(line) for line in lines]          #   Every line is one object
    assert all(set(entry) == {"time", "level", "server", "message"} for entry in objects)
    assert all(entry["server"] == "Bailey" and re.match(r"20\d\d-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d$", entry["time"])
               for entry in objects)
    messages = [entry["message"] for entry in objects]
    assert any(message.startswith("herd ") and "starting server Bailey" in message for message in messages)
    assert any(re.match(r"client \d+ < IAMAT kiwi \+1\+1 5 > AT Bailey ", message) for message in messages)
    assert {entry["level"] for entry in objects} <= {"debug", "info", "notice", "warning", "error"}


def test_log_level_from_the_config_and_the_traffic_switch(make_herd):
    herd = make_herd(graph={"Bailey": []}, settings={"herd/log_level": "warning", "places/provider": "none"})
    herd.iamat("Bailey", "kiwi", "+1+1", "5")
    log = herd.log("Bailey")
    assert "starting server Bailey" not in log                  #   info: below warning
    assert "W: (Bailey)" in log and "provider none" in log     #   warning: kept
    assert re.search(r"client \d+ < IAMAT kiwi", log)         #   traffic: its own switch
    #   --log-format on the command line wins over the config; a bad value is one line
    bad = subprocess.run([HERD_BIN, "--config", herd.config, "--log-format", "xml", "Bailey"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr == "herd: --log-format xml: expected text or json\n"


def test_verbose_logs_to_stderr_too(make_herd):
    herd = make_herd(graph={"Bailey": []}, start=False)
    herd.processes["Bailey"] = herd.spawn("Bailey", "--verbose")
    herd.wait_ready("Bailey")
    process = herd.kill("Bailey", signal.SIGTERM)
    stderr = process.stderr.read().decode()
    assert "(Bailey)" in stderr and "server Bailey stopped" in stderr
    assert "server Bailey stopped" in herd.log("Bailey")


def test_sighup_reopens_the_log_for_rotation(make_herd):
    herd = make_herd(graph={"Bailey": []})
    herd.iamat("Bailey", "before", "+1+1", "1")
    path = os.path.join(herd.folder, "log", "Bailey.log")
    os.rename(path, path + ".1")            #   What logrotate does
    herd.processes["Bailey"].send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.05)
    herd.iamat("Bailey", "after", "+1+1", "1")
    assert herd.processes["Bailey"].poll() is None      #   Still serving
    with open(path + ".1") as old:
        old_text = old.read()
    assert "IAMAT before" in old_text and "IAMAT after" not in old_text
    new_text = herd.log("Bailey")
    assert "SIGHUP: log file reopened" in new_text and "IAMAT after" in new_text
    assert "IAMAT before" not in new_text


def test_state_is_indented_on_a_terminal_and_one_line_for_scripts(make_herd):
    """herd --state prints JSON either way: indented when a person reads
    it at a terminal (a pty here), one line when a script reads a pipe."""
    import pty
    herd = make_herd(graph={"Bailey": []})
    command = [HERD_BIN, "--config", herd.config, "--state", "Bailey"]
    piped = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert piped.returncode == 0 and piped.stdout.count("\n") == 1
    assert json.loads(piped.stdout)["server"] == "Bailey"
    leader, follower = pty.openpty()
    at_terminal = subprocess.run(command, stdout=follower, stderr=subprocess.PIPE, timeout=30)
    os.close(follower)
    text = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        text += chunk
    os.close(leader)
    assert at_terminal.returncode == 0
    lines = text.decode().replace("\r\n", "\n").strip().split("\n")
    assert len(lines) > 5 and lines[1].startswith("  \"")
    assert json.loads("\n".join(lines))["server"] == "Bailey"


def test_herd_run_exits_non_zero_when_a_server_cannot_start(make_herd):
    """tools/herd-run (behind make run) stops the rest and exits 1 when a
    server cannot start: here its client port is taken."""
    herd = make_herd(graph={"Bailey": ["Bona"], "Bona": ["Bailey"]}, start=False)
    taken = socket.socket()
    taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    taken.bind(("127.0.0.1", herd.client_ports["Bona"]))
    taken.listen()
    herd_run = os.path.join(os.path.dirname(__file__), "..", "tools", "herd-run")
    result = subprocess.run([herd_run, HERD_BIN, herd.config], capture_output=True, text=True, timeout=60)
    taken.close()
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "herd-run: a server failed to start (see above); stopping the rest" in result.stderr
    assert "herd-run: all stopped" in result.stdout


def test_sighup_applies_what_can_change_and_names_what_waits_for_a_restart(make_herd):
    single = make_herd(graph={"Bailey": []})
    assert single.iamat("Bailey", "early", "+1+1", "1000").startswith(b"AT ")
    single.settings.update({"herd/client_ttl": 60, "herd/max_per_address": 1, "herd/fsync": "always",
                            "herd/log_traffic": 0, "herd/log_level": "notice"})
    single.write_config()
    single.processes["Bailey"].send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 30
    while "take effect at the next restart: herd/fsync" not in single.log("Bailey"):
        assert time.monotonic() < deadline, single.log("Bailey")
        time.sleep(0.1)
    log = single.log("Bailey")
    applied = next(line for line in log.splitlines() if "SIGHUP: " in line and ": applied " in line)
    for path in ("herd/client_ttl", "herd/max_per_address", "herd/log_traffic", "herd/log_level"):
        assert path in applied, applied
    #   In effect: an IAMAT older than the ttl is "?", a second connection
    #   from one address is refused, the traffic log is off
    first = single.client("Bailey")
    first.send(b"IAMAT old +1+1 1000\n")
    assert first.line() == b"? IAMAT old +1+1 1000"
    second = single.client("Bailey")
    assert second.closed()
    assert "IAMAT old" not in single.log("Bailey")
    #   A config that does not load changes nothing, and says why
    with open(single.config, "a") as file:
        file.write("nonsense = 1\n")
    single.processes["Bailey"].send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 30
    while "no setting reloaded" not in single.log("Bailey"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    first.send(b"IAMAT fresh +1+1 " + f"{time.time():.3f}".encode() + b"\n")
    assert first.line().startswith(b"AT Bailey ")


def test_clients_are_listed_dumped_and_seen_connected(make_herd, tmp_path):
    """herd --clients (a page at a time, as SCAN), --client, --dump and
    --connections (as CLIENT LIST), on the admin link"""
    single = make_herd(graph={"Bailey": []})
    connection = single.client("Bailey")
    connection.send("".join(f"IAMAT c{n} +1+1 {1000 + n}\n" for n in range(2500)) + "FORGET c7 5000\n")
    for _ in range(2501):
        connection.line()

    def herd(*arguments):
        return subprocess.run([HERD_BIN, "--config", single.config, *arguments], capture_output=True,
                              text=True, timeout=60)

    listed = herd("--clients", "Bailey")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert len(lines) == 2500 and len(set(lines)) == 2500
    assert sum(line.startswith("GONE Bailey ") and " c7 5000" in line for line in lines) == 1
    assert "Bailey: 2499 clients, 1 forgotten (tombstones)" in listed.stderr
    one = herd("--client", "c42", "Bailey")
    assert json.loads(one.stdout)["line"].endswith(" c42 +1+1 1042")
    assert json.loads(herd("--client", "nobody", "Bailey").stdout)["line"] is None
    dump = tmp_path / "store.txt"
    dumped = herd("--dump", str(dump), "Bailey")
    assert dumped.returncode == 0 and f"written to {dump}" in dumped.stdout
    assert sorted(dump.read_text().splitlines()) == sorted(lines)
    assert oct(dump.stat().st_mode & 0o777) == "0o600"
    #   The connection above is open, and one more that sent half a line
    half = single.client("Bailey")
    half.send(b"IAMAT half")
    time.sleep(0.3)
    connections = json.loads(herd("--connections", "Bailey").stdout)["connections"]
    states = sorted(entry["state"] for entry in connections)
    assert states == ["commanded", "no command yet"], connections
    assert all(entry["address"].startswith("127.0.0.1:") and entry["tls"] == "no" for entry in connections)
