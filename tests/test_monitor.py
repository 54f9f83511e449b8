"""herd-monitor on the servers' update feeds, and the stats request."""

import json
import os
import subprocess
import time

from conftest import AT_PATTERN

HERD_MONITOR = os.path.abspath(os.environ.get(
    "HERD_MONITOR", os.path.join(os.path.dirname(__file__), "..", "build", "herd-monitor")))


def monitor(herd, *args):
    return subprocess.Popen([HERD_MONITOR, "--config", herd.config, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def feed_until_done(herd, process, server="Bailey", client="watch", seconds=15):
    """IAMATs until the monitor exits (its --count reached): slow joiner."""
    deadline = time.monotonic() + seconds
    n = 0
    while process.poll() is None and time.monotonic() < deadline:
        n += 1
        herd.iamat(server, f"{client}{n % 3}", "+1+1", f"{time.time():.9f}")
        time.sleep(0.05)
    out, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    return out.splitlines()


def test_help_documents_the_feed_format_and_version():
    result = subprocess.run([HERD_MONITOR, "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    assert "[client id][AT line]" in result.stdout
    assert "feed" in result.stdout
    version = subprocess.run([HERD_MONITOR, "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("herd-monitor ")


def test_plain_output_names_the_server_it_came_from(herd):
    process = monitor(herd, "--count", "3", "--timeout", "20", "Campbell", "Clark")
    lines = feed_until_done(herd, process)
    assert len(lines) == 3
    for line in lines:
        source, at = line.split(" ", 1)
        assert source in ("Campbell", "Clark")
        assert AT_PATTERN.match(at.encode())
        assert at.startswith("AT Bailey ")


def test_json_lines_and_client_filter(herd):
    endpoint = f"tcp://127.0.0.1:{herd.feed_ports['Jaquez']}"
    process = monitor(herd, "--json", "--client", "watch1", "--count", "2", "--timeout", "20", endpoint)
    lines = feed_until_done(herd, process)
    assert len(lines) == 2
    for line in lines:
        update = json.loads(line)
        assert update["from"] == endpoint
        assert update["client"] == "watch1"
        assert update["at"].split()[3] == "watch1"
        assert set(update) == {"from", "client", "at", "received"}


def feed_for_three_seconds(herd, process):
    """IAMATs at Bailey while a --stats monitor runs its 3 s; its output."""
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        herd.iamat("Bailey", "rate", "+1+1", f"{time.time():.9f}")
        time.sleep(0.02)
    out, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    return out


def test_stats_prints_rates_per_server(herd):
    process = monitor(herd, "--stats", "--timeout", "3", "Bona", "Clark")
    out = feed_for_three_seconds(herd, process)
    rates = [line for line in out.splitlines() if line.startswith("rates/s:")]
    assert rates, out
    assert any(int(line.split()[2]) > 0 for line in rates)
    assert "Bona" in rates[0] and "Clark" in rates[0]


def test_json_stats_are_valid_json_whatever_the_source_is_called(make_herd, tmp_path):
    #   An endpoint that is no server's bus can be watched only over plain
    #   links: this herd runs with security off, explicitly
    herd = make_herd(settings={"herd/security": "off"})
    odd = f'ipc://{tmp_path}/we"ird\\name'
    process = monitor(herd, "--stats", "--json", "--timeout", "3", "Bona", odd)
    out = feed_for_three_seconds(herd, process)
    rates = [json.loads(line) for line in out.splitlines()]
    assert rates, out
    assert all(list(rate) == ["Bona", odd] for rate in rates)
    assert any(rate["Bona"] > 0 for rate in rates)


def test_unknown_server_is_a_clear_error(herd):
    result = subprocess.run([HERD_MONITOR, "--config", herd.config, "Nobody"],
                            capture_output=True, text=True, timeout=10)
    assert result.returncode == 1
    assert "no server named 'Nobody'" in result.stderr


def test_a_server_without_a_feed_is_a_clear_error(herd):
    text = open(herd.config).read()
    text = text.replace(f"        feed = tcp://127.0.0.1:{herd.feed_ports['Clark']}\n", "")
    herd.write_config(text)
    result = subprocess.run([HERD_MONITOR, "--config", herd.config, "Clark"],
                            capture_output=True, text=True, timeout=10)
    assert result.returncode == 1
    assert "server Clark has no feed endpoint" in result.stderr


def test_stats_request_counts(make_herd):
    single = make_herd(graph={"Bailey": []})
    connection = single.client("Bailey")
    connection.send(b"IAMAT kiwi +34.068930-118.445127 1\n")
    connection.line()
    connection.whatsat("kiwi", 10, 3)
    connection.whatsat("kiwi", 10, 5)
    connection.send(b"NONSENSE\n")
    connection.line()
    result = subprocess.run([os.environ.get("HERD_BIN", "build/herd"), "--config", single.config,
                             "--stats", "Bailey"], capture_output=True, text=True, timeout=10)
    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stdout)
    assert stats["commands"] == {"IAMAT": 1, "WHATSAT": 2, "FORGET": 0}
    assert stats["bad_lines"] == 1
    assert stats["connections_open"] >= 1
    assert stats["clients_stored"] == 1
    assert stats["updates"]["out"] == 1
    places = stats["places"]
    #   The offline provider answers in the server's loop, from memory: no
    #   cache in front of it (test_places holds Google's cache to account)
    assert places["provider"] == "offline"
    assert places["requests"] == 2 and places["cache_hits"] == 0 and places["cache_misses"] == 0
    assert places["provider_errors"] == 0
    #   Uptime counts the seconds since start: 2 s later it is 2 or 3 more
    time.sleep(2.1)
    later = json.loads(subprocess.run([os.environ.get("HERD_BIN", "build/herd"), "--config", single.config,
                                       "--stats", "Bailey"], capture_output=True, text=True,
                                      timeout=10).stdout)
    assert 2 <= later["uptime_s"] - stats["uptime_s"] <= 4, (stats["uptime_s"], later["uptime_s"])
