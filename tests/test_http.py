"""The operator endpoint over HTTP: /metrics in the Prometheus text
format (checked with prometheus_client's own parser), /healthz, /readyz,
and herd --ready, which the compose healthchecks run."""

import contextlib
import pathlib
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from conftest import HERD_BIN, google_herd


def slow_connection(port, held, stop, interval, source="127.0.0.1", ended=None):
    """A connection that sends a byte every interval seconds and never
    finishes a request (run in a thread until stop); ended gets the time
    the server cut it off."""
    sock = socket.socket()
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    held.append(sock)
    try:
        sock.send(b"G")
        while not stop.wait(interval):
            sock.send(b"E")
    except OSError:
        if ended is not None:
            ended.append(time.monotonic())


@contextlib.contextmanager
def slow_connections(port, sources, interval):
    """A slow connection from each source (threads, ended on leaving);
    yields the list of the times the server cut them off"""
    held, stop, ended = [], threading.Event(), []
    threads = [threading.Thread(target=slow_connection, args=(port, held, stop, interval, source, ended))
               for source in sources]
    for thread in threads:
        thread.start()
    try:
        yield ended
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
        for sock in held:
            sock.close()


def get(herd, name, path):
    """(status, body) of a GET on the server's HTTP endpoint."""
    url = f"http://127.0.0.1:{herd.http_ports[name]}{path}"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def scrape(herd, name):
    """{metric family: {frozenset of labels: value}}"""
    status, text = get(herd, name, "/metrics")
    assert status == 200, text
    return {family.name: {frozenset(sample.labels.items()): sample.value for sample in family.samples}
            for family in text_string_to_metric_families(text)}


def value(metrics, family, **labels):
    return metrics[family][frozenset(labels.items())]


def test_metrics_move_with_traffic(make_herd):
    single = make_herd(graph={"Bailey": []}, settings={"places/provider": "none"})
    before = scrape(single, "Bailey")
    assert value(before, "herd_clients_stored", server="Bailey") == 0
    connection = single.client("Bailey")
    connection.send(b"IAMAT m1 +1+1 1\nIAMAT m2 +1+1 1\nIAMAT m3 +1+1 1\nHELLO\nIAMAT m4 +1+1 9999999999\n"
                    b"WHATSAT m1 5 1\n")
    for _ in range(5):
        connection.line()
    connection.until_blank()
    after = scrape(single, "Bailey")
    assert value(after, "herd_clients_stored", server="Bailey") == 3
    assert value(after, "herd_commands", server="Bailey", kind="IAMAT") == 4
    assert value(after, "herd_commands", server="Bailey", kind="WHATSAT") == 1
    assert value(after, "herd_bad_lines", server="Bailey") == 1
    #   The far-future IAMAT: answered "?" and counted by its reason
    assert value(after, "herd_iamats_refused", server="Bailey", reason="future") == 1
    assert value(after, "herd_iamats_refused", server="Bailey", reason="store_full") == 0
    assert value(after, "herd_updates_out", server="Bailey") == 3
    assert value(after, "herd_places_requests", server="Bailey") >= 1
    assert value(after, "herd_connections_open", server="Bailey") >= 1
    assert value(after, "herd_journal_ok", server="Bailey") == 1
    assert value(after, "herd_caught_up", server="Bailey") == 1
    connection.close()
    assert get(single, "Bailey", "/nothing")[0] == 404


def test_provider_latency_is_a_histogram(make_herd, google):
    #   A provider that waits (the offline one answers in the server's loop)
    herd = google_herd(make_herd, google)
    connection = herd.client("Bailey")
    connection.send(b"IAMAT h +34.068930-118.445127 1\n")
    connection.line()
    for radius in (1, 2, 3):                    #   Three questions, three provider answers
        connection.whatsat("h", radius, 1)
    connection.close()
    status, text = get(herd, "Bailey", "/metrics")
    histogram = next(family for family in text_string_to_metric_families(text)
                     if family.name == "herd_places_provider_seconds")
    assert histogram.type == "histogram"
    buckets = [(sample.labels["le"], sample.value) for sample in histogram.samples
               if sample.name.endswith("_bucket")]
    counts = [value for _, value in buckets]
    assert counts == sorted(counts) and buckets[-1] == ("+Inf", 3)        #   Cumulative, all three
    count = next(s.value for s in histogram.samples if s.name.endswith("_count"))
    total = next(s.value for s in histogram.samples if s.name.endswith("_sum"))
    assert count == 3 and 0 <= total < 3


def test_links_health_and_readiness(make_herd):
    pair = make_herd(graph={"Bailey": ["Bona"], "Bona": ["Bailey"]})
    assert get(pair, "Bailey", "/readyz") == (200, "ready\n")
    metrics = scrape(pair, "Bailey")
    assert value(metrics, "herd_link_up", server="Bailey", neighbour="Bona") == 1
    assert subprocess.run([HERD_BIN, "--config", pair.config, "--ready", "Bailey"],
                          capture_output=True, timeout=10).returncode == 0
    #   Silence alone: a frozen Bona keeps its TCP link, and is down
    #   because nothing is heard
    pair.processes["Bona"].send_signal(signal.SIGSTOP)
    try:
        deadline = time.monotonic() + 30
        while value(scrape(pair, "Bailey"), "herd_link_up", server="Bailey", neighbour="Bona") != 0:
            assert time.monotonic() < deadline, "the silent link never showed"
            time.sleep(0.2)
        link = pair.state("Bailey")["links"]["Bona"]
        assert link["connected"] is True and link["silent"] is True, link
        assert value(scrape(pair, "Bailey"), "herd_link_heard_seconds_ago", server="Bailey", neighbour="Bona") >= 3
    finally:
        pair.processes["Bona"].send_signal(signal.SIGCONT)
    deadline = time.monotonic() + 30
    while value(scrape(pair, "Bailey"), "herd_link_up", server="Bailey", neighbour="Bona") != 1:
        assert time.monotonic() < deadline, "the link never came back after the thaw"
        time.sleep(0.2)
    #   A disconnect: the link is down because the TCP link is gone
    pair.kill("Bona", signal.SIGKILL)
    deadline = time.monotonic() + 30
    while pair.state("Bailey")["links"]["Bona"]["connected"]:
        assert time.monotonic() < deadline, "the disconnect never showed"
        time.sleep(0.1)
    assert value(scrape(pair, "Bailey"), "herd_link_up", server="Bailey", neighbour="Bona") == 0
    assert get(pair, "Bailey", "/healthz") == (200, "alive\n")
    #   A server that cannot catch up from anyone is alive, not ready
    pair.kill("Bailey", signal.SIGKILL)
    pair.start("Bailey", wait=False)
    pair.wait_ready("Bailey")
    assert get(pair, "Bailey", "/healthz")[0] == 200
    assert get(pair, "Bailey", "/readyz") == (503, "not caught up yet\n")
    result = subprocess.run([HERD_BIN, "--config", pair.config, "--ready", "Bailey"],
                            capture_output=True, text=True, timeout=10)
    assert result.returncode == 1 and "503 not caught up yet" in result.stderr


def test_health_answers_during_a_flood_of_connections_and_slow_ones(make_herd):
    """5,000 connections from 50 addresses and 40 that send a byte every
    2 s (never finishing a request) do not keep /healthz from answering:
    a per-address limit, room for a thousand, and a total time for a
    connection that each byte does not reset."""
    herd = make_herd(graph={"Bailey": []})
    port = herd.http_ports["Bailey"]
    flood = []
    with slow_connections(port, [f"127.0.1.{n % 4 + 1}" for n in range(40)], 2):
        try:
            for n in range(5000):
                sock = socket.socket()
                try:
                    sock.bind((f"127.0.2.{n % 50 + 1}", 0))
                    sock.connect(("127.0.0.1", port))
                except OSError:
                    sock.close()
                    continue
                flood.append(sock)
            for attempt in range(8):
                status, body = get(herd, "Bailey", "/healthz")
                assert (status, body) == (200, "alive\n")
                time.sleep(1)           #   Past S_TOTAL_SECONDS the slow ones are gone too
            assert herd.processes["Bailey"].poll() is None
        finally:
            for sock in flood:
                sock.close()


def test_health_answers_from_the_address_that_floods_it(make_herd):
    """40 slow connections from the prober's own address (the bound is 32
    from one address): each probe from there makes room by ending the
    oldest of them, and a slow connection ends at S_TOTAL_SECONDS (10 s)
    on the node's timer, with nobody connecting after it."""
    herd = make_herd(graph={"Bailey": []})
    port = herd.http_ports["Bailey"]
    started = time.monotonic()
    with slow_connections(port, ["127.0.0.1"] * 40, 1) as ended:
        time.sleep(1)
        for attempt in range(6):
            assert get(herd, "Bailey", "/healthz") == (200, "alive\n"), attempt
            time.sleep(0.2)
        #   The rest end by the timer, with no probe to make room
        deadline = time.monotonic() + 30
        while len(ended) < 40:
            assert time.monotonic() < deadline, f"{40 - len(ended)} slow connections outlived their time"
            time.sleep(0.2)
        assert max(ended) - started < 20


def stats_leaves(node, prefix=""):
    """Every number in STATS, by its path ("journal/syncs")."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from stats_leaves(value, f"{prefix}{key}/")
    elif isinstance(node, (bool, int, float)):
        yield prefix[:-1]


def test_every_counter_in_stats_is_a_metric(make_herd):
    """STATS and /metrics come from one table: a counter that exists in
    one and is missing from the other fails here. Each metric's HELP names
    its STATS path; every number in STATS must be under one of them."""
    herd = make_herd(graph={"Bailey": []}, settings={"places/provider": "offline"})
    connection = herd.client("Bailey")
    connection.send(b"IAMAT kiwi +34.068930-118.445127 1\n")
    connection.line()
    connection.whatsat("kiwi", 10, 3)
    status, text = get(herd, "Bailey", "/metrics")
    assert status == 200
    exported = set(re.findall(r"^# HELP \S+ .*\(STATS (\S+)\)$", text, re.M))
    missing = [path for path in stats_leaves(herd.stats("Bailey"))
               if not any(path == root or path.startswith(root + "/") for root in exported)]
    assert not missing, f"in STATS but not in /metrics: {missing}"
    #   And every counter of the table (core/herd_counters.h) is in STATS,
    #   so in /metrics: none defined and left unreported
    header = (pathlib.Path(__file__).parent.parent / "core" / "herd_counters.h").read_text()
    table = re.findall(r'X \((\w+), "([^"]+)", "(herd_\w+)"', re.sub(r"\\\n\s*", " ", header))
    assert len(table) > 40, "the table was not read"
    unreported = [name for _, _, name in table if f"# TYPE {name} " not in text]
    assert not unreported, f"defined but not in /metrics: {unreported}"
    #   And the families keep their labels
    assert 'herd_handshakes_refused_total{server="Bailey",domain="bus"}' in text
    assert 'herd_commands_total{server="Bailey",kind="IAMAT"} 1' in text
    #   Renamed metrics keep their old names one release, the same values,
    #   marked deprecated (docs/operating.md)
    aliases = re.findall(r'X \((\w+), "(herd_\w+)"\)', header.split("HERD_COUNTER_ALIASES", 1)[1].split("typedef", 1)[0])
    assert len(aliases) == 3, aliases
    names = {identifier: name for identifier, _, name in table}
    for identifier, old in aliases:
        new = names[identifier]
        assert re.search(rf"^# HELP {old} Deprecated: {new}, ", text, re.M), old
        sample = lambda name: re.search(rf'^{name}{{server="Bailey"}} (\S+)$', text, re.M).group(1)
        assert sample(old) == sample(new), (old, new)


def test_metrics_say_what_every_exporter_says_of_its_process(make_herd):
    """Resident memory, CPU seconds, open descriptors, start time and the
    build, as the Prometheus client libraries name them, matching what
    /proc says of the server."""
    herd = make_herd(graph={"Bailey": []})
    pid = herd.processes["Bailey"].pid
    metrics = scrape(herd, "Bailey")
    with open(f"/proc/{pid}/status") as status:
        rss_kib = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    resident = value(metrics, "process_resident_memory_bytes", server="Bailey")
    assert 0.5 * rss_kib * 1024 < resident < 2 * rss_kib * 1024, (resident, rss_kib)
    assert abs(value(metrics, "process_start_time_seconds", server="Bailey") - time.time()) < 120
    assert 10 < value(metrics, "process_open_fds", server="Bailey") < value(metrics, "process_max_fds",
                                                                             server="Bailey")
    assert value(metrics, "process_cpu_seconds", server="Bailey") > 0
    #   "herd 0.1.0 (bus format 2)": the release and the bus format, as --version says
    words = subprocess.run([HERD_BIN, "--version"], capture_output=True, text=True).stdout.split()
    version, bus_format = words[1], words[-1].rstrip(")")
    assert value(metrics, "herd_build_info", server="Bailey", version=version, bus_format=bus_format) == 1
