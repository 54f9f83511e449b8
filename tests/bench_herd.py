#!/usr/bin/env python3
"""tests/bench_herd.py: figures from real servers (make bench), bounded in
count and time, on 127.0.0.1 only. Figures that matter are ratios measured
in this one run; these machines are shared and noisy.

  1. IAMAT throughput with the journal at each fsync policy, against no journal,
     pipelined (one write, one fsync per batch: group commit) and one by one
  2. propagation latency Bailey -> Clark (two hops) at 1,000 and 10,000 updates/s
  3. time for a restarted server to catch up with 100,000 clients stored
  4. a probe client's round trips at a million clients stored: quiet,
     while the journal is compacted, and under a storm of SYNC requests
  and, first, each of five servers' data load time and resident memory
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import socket
import threading
import time


sys.path.insert(0, os.path.dirname(__file__))
from conftest import Herd, probe, sync_storm  # noqa: E402

JOURNAL_GEN = os.environ.get("HERD_JOURNAL_GEN", "build/herd_journal_gen")


def make(folder, graph, **settings):
    os.makedirs(folder, exist_ok=True)
    herd = Herd(folder, graph, {"herd/log_traffic": 0, "places/provider": "none", **settings})
    herd.start()
    return herd


def pipelined_iamats(herd, name, count, prefix, batch=1000):
    connection = herd.client(name)
    started = time.perf_counter()
    for start in range(0, count, batch):
        connection.send("".join(f"IAMAT {prefix}{n} +1+1 {1000000 + n}\n"
                                for n in range(start, min(count, start + batch))))
        for _ in range(min(batch, count - start)):
            connection.line()
    elapsed = time.perf_counter() - started
    connection.close()
    return count / elapsed


def throughput(root):
    rates = {}
    for batch, count in ((1000, 40000), (1, 3000)):
        print(f"IAMAT throughput, one connection, {batch} command(s) a write, journal policies "
              "vs no journal:")
        for label, settings in (("no journal", {"herd/journal": 0}),
                                ("fsync=no", {"herd/fsync": "no"}),
                                ("fsync=everysec", {"herd/fsync": "everysec"}),
                                ("fsync=always", {"herd/fsync": "always"})):
            folder = os.path.join(root, f"{batch}-" + label.replace(" ", "_").replace("=", "_"))
            herd = make(folder, {"Bailey": []}, **settings)
            rates[label] = pipelined_iamats(herd, "Bailey", count, "t", batch)
            herd.stop_all()
            print(f"  {label:16} {rates[label]:10.0f} IAMAT/s   "
                  f"{rates[label] / rates['no journal']:6.2f}x of no journal")
    return rates


def propagation(root, rate=10000, seconds=2.0, security="on"):
    """herd_latency (C) sends at Bailey and listens at Clark, two hops away."""
    probe = os.environ.get("HERD_LATENCY", os.path.join(os.path.dirname(__file__), "..", "build",
                                                        "herd_latency"))
    herd = make(os.path.join(root, f"propagation-{security}"), None, **{"herd/security": security})
    keys = [os.path.join(herd.keys, "secret", "monitor.key_secret"),
            os.path.join(herd.keys, "public", "Clark.key")] if security == "on" else []
    print(f"\npropagation Bailey -> Bona -> Clark, IAMAT sent to update seen on Clark's feed, "
          f"security {security}:")
    p99 = {}
    for label, probe_rate in (("at rest", rate // 10), ("steady", rate)):
        result = subprocess.run([probe, "127.0.0.1", str(herd.client_ports["Bailey"]),
                                 f"tcp://127.0.0.1:{herd.feed_ports['Clark']}", str(probe_rate),
                                 str(seconds), *keys], capture_output=True, text=True, timeout=120)
        print(f"  {label:8} {probe_rate:6} updates/s: {result.stdout.strip()}")
        found = re.search(r"p99 ([0-9.]+)", result.stdout)
        p99[label] = float(found.group(1)) if found else None
    herd.stop_all()
    return p99


def bus_throughput(root, security, count=50000):
    """A pipelined burst at Bailey until Clark, two hops away, holds it all."""
    herd = make(os.path.join(root, f"bus-{security}"), None, **{"herd/security": security,
                                                                "herd/journal": 0})
    started = time.perf_counter()
    pipelined_iamats(herd, "Bailey", count, "b")
    while herd.state("Clark")["clients"] < count:
        assert time.perf_counter() - started < 120, "the burst never arrived"
        time.sleep(0.01)
    rate = count / (time.perf_counter() - started)
    herd.stop_all()
    return rate


def curve_cost(root):
    """What CURVE costs: bus throughput and propagation, security on vs off."""
    print("\nCURVE on every link vs plain links (same run):")
    rates = {}
    for repetition in range(2):
        for security in ("on", "off"):
            rates.setdefault(security, []).append(bus_throughput(root, security))
    on, off = max(rates["on"]), max(rates["off"])
    print(f"  bus throughput, {50000} updates Bailey -> Clark (two hops): "
          f"on {on:8.0f}/s, off {off:8.0f}/s, on:off {on / off:5.2f}x")
    latency = {security: propagation(root, security=security) for security in ("on", "off")}
    for label in ("at rest", "steady"):
        if latency["on"][label] and latency["off"][label]:
            print(f"  propagation p99 {label}: on:off {latency['on'][label] / latency['off'][label]:5.2f}x")


def catch_up(root, clients=100000):
    print(f"\ncatch-up of a restarted server with {clients} clients stored:")
    herd = make(os.path.join(root, "catchup"), {"Bailey": ["Bona"], "Bona": ["Bailey"]})
    pipelined_iamats(herd, "Bailey", clients, "c")
    herd.wait_converged(timeout=60)
    results = {}
    for label, delete in (("journal kept", False), ("data dir deleted", True)):
        herd.kill("Bona", signal.SIGKILL)
        if delete:
            shutil.rmtree(os.path.join(herd.folder, "state"), ignore_errors=True)
        started = time.perf_counter()
        herd.start("Bona", wait=False)
        herd.wait_ready("Bona")
        while True:
            state = herd.state("Bona")
            if state["caught_up"] and state["clients"] == clients:
                break
            time.sleep(0.01)
        results[label] = time.perf_counter() - started
        print(f"  {label:18} {results[label] * 1000:8.0f} ms from start to caught up")
    herd.stop_all()
    return results


def percentiles(results):
    results = sorted(results)
    return (results[len(results) // 2], results[int(len(results) * 0.99)], results[-1])


def stalls(root, clients=1000000):
    """The loop never waits on disk or catch-up work: probe round trips."""
    print(f"\nprobe client round trips (IAMAT one at a time) with {clients} clients stored:")
    folder = os.path.join(root, "stalls")
    os.makedirs(os.path.join(folder, "state"))
    herd = Herd(folder, {"Bailey": []}, {"herd/log_traffic": 0, "places/provider": "none",
                                         "herd/max_stored": clients + 100000})
    subprocess.run([JOURNAL_GEN, os.path.join(folder, "state", "Bailey.journal"), str(clients), "3"],
                   check=True, timeout=300)
    herd.start()
    figures = {}
    #   The journal holds three times the store: compaction starts at once
    results = []
    probe(herd.client_ports["Bailey"], 4, results)
    figures["compaction"] = percentiles(results)
    assert "rewritten from the store" in herd.log("Bailey"), "no compaction happened"
    results = []
    probe(herd.client_ports["Bailey"], 4, results)
    figures["quiet"] = percentiles(results)
    results = []
    thread = threading.Thread(target=probe, args=(herd.client_ports["Bailey"], 6, results))
    thread.start()
    sent = sync_storm(herd, "Bailey", 5)
    thread.join()
    figures[f"SYNC storm ({sent} in 5 s)"] = percentiles(results)
    herd.stop_all()
    quiet_p99 = figures["quiet"][1]
    for label, (p50, p99, worst) in figures.items():
        print(f"  {label:24} p50 {p50:6.2f} ms  p99 {p99:6.2f} ms ({p99 / quiet_p99:4.1f}x quiet)  "
              f"max {worst:6.1f} ms")
    return figures


def expiry(root, clients=1000000):
    """A million clients expiring at once (herd/client_ttl): the journal's
    clients, all from 2020, past a ttl of an hour the moment the server is
    up; probe round trips while the sweep forgets them, in slices."""
    print(f"\nprobe client round trips while {clients} clients expire at once (herd/client_ttl):")
    folder = os.path.join(root, "expiry")
    os.makedirs(os.path.join(folder, "state"))
    herd = Herd(folder, {"Bailey": []}, {"herd/log_traffic": 0, "places/provider": "none",
                                         "herd/max_stored": clients + 100000, "herd/client_ttl": 3600})
    subprocess.run([JOURNAL_GEN, os.path.join(folder, "state", "Bailey.journal"), str(clients), "1"],
                   check=True, timeout=300)
    herd.start()
    results = []
    started = time.monotonic()

    def fresh_probe():
        #   As conftest's probe, with times of now: an old one would be "?"
        with socket.create_connection(("127.0.0.1", herd.client_ports["Bailey"])) as connection:
            reader = connection.makefile("rb")
            n = 0
            while time.monotonic() - started < 45:
                n += 1
                sent = time.perf_counter()
                connection.sendall(f"IAMAT probe{n % 10} +1+1 {time.time():.6f}\n".encode())
                assert reader.readline().startswith(b"AT ")
                results.append((time.perf_counter() - sent) * 1000)
                time.sleep(0.002)

    thread = threading.Thread(target=fresh_probe)
    stop_at = None
    thread.start()
    while stop_at is None and time.monotonic() - started < 45:
        if herd.stats("Bailey")["forget"]["expired"] >= clients:
            stop_at = time.monotonic()
        time.sleep(0.5)
    thread.join()
    p50, p99, worst = percentiles(results)
    expired = herd.stats("Bailey")["forget"]["expired"]
    print(f"  {expired} expired in {(stop_at or time.monotonic()) - started:5.1f} s; probe IAMATs meanwhile: "
          f"p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  max {worst:6.1f} ms (target p99 <= 2 ms)")
    herd.stop_all()


def startup(root):
    """Five real servers with the offline data: load time and memory each."""
    print("five servers with the offline places data:")
    herd = make(os.path.join(root, "startup"), None, **{"places/provider": "offline"})
    for name, process in herd.processes.items():
        loaded = re.search(r"places: loaded (\d+) places from .* in ([0-9.]+) ms", herd.log(name))
        with open(f"/proc/{process.pid}/status") as status:
            fields = dict(line.split(":", 1) for line in status if ":" in line)
        print(f"  {name:9} loaded {loaded.group(1)} places in {float(loaded.group(2)):6.1f} ms; "
              f"resident {int(fields['VmRSS'].split()[0]) / 1024:5.1f} MiB "
              f"(of which shared file pages {int(fields['RssFile'].split()[0]) / 1024:5.1f} MiB)")
    herd.stop_all()


def main():
    root = tempfile.mkdtemp(prefix="herd-bench-")
    try:
        startup(root)
        throughput(root)
        curve_cost(root)
        catch_up(root)
        stalls(root)
        expiry(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
