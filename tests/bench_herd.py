#!/usr/bin/env python3
"""tests/bench_herd.py: figures from real servers (make bench), bounded in
count and time, on 127.0.0.1 only. Figures that matter are ratios measured
in this one run; these machines are shared and noisy.

  1. IAMAT throughput with the journal at each fsync policy, against no journal,
     pipelined (one write, one fsync per batch: group commit) and one by one
  2. propagation latency Bailey -> Clark (two hops) at 10,000 updates/s
  3. time for a restarted server to catch up with 100,000 clients stored
"""

import os
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time

import zmq

sys.path.insert(0, os.path.dirname(__file__))
from conftest import Herd  # noqa: E402


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


def propagation(root, rate=10000, seconds=2.0):
    print(f"\npropagation Bailey -> Bona -> Clark at {rate} updates/s for {seconds:.0f} s:")
    herd = make(os.path.join(root, "propagation"), None)
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"lat")
    sub.connect(f"tcp://127.0.0.1:{herd.bus_ports['Clark']}")
    #   Slow joiner: wait for a first update through Clark
    sub.setsockopt(zmq.RCVTIMEO, 100)
    for attempt in range(100):
        herd.iamat("Bailey", "latwarm", "+1+1", f"{attempt + 1}")
        try:
            sub.recv_multipart()
            break
        except zmq.Again:
            continue
    sent = {}
    connection = herd.client("Bailey")
    total = int(rate * seconds)

    def drain():
        for _ in range(total):
            connection.line()

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()

    #   One thread paces the sends and reads the SUB, so the GIL adds no
    #   waiting between a send and the arrival it measures
    latencies = []
    poller = zmq.Poller()
    poller.register(sub, zmq.POLLIN)
    started = time.perf_counter()
    deadline = started + seconds + 5
    next_batch = 0
    while len(latencies) < total and time.perf_counter() < deadline:
        if next_batch < total and time.perf_counter() >= started + next_batch / rate:
            lines = []
            for k in range(next_batch, next_batch + 10):
                sent[f"lat{k}".encode()] = time.perf_counter()
                lines.append(f"IAMAT lat{k} +1+1 {k + 1}\n")
            connection.send("".join(lines))
            next_batch += 10
        #   Sleep in poll until the next batch is due, not in a busy loop:
        #   on two cores a spinning client would starve the servers
        wait = (started + next_batch / rate - time.perf_counter()) * 1000
        while poller.poll(max(0, min(1, int(wait))) if next_batch < total else 100):
            wait = 0
            frames = sub.recv_multipart()
            if frames[0] in sent:
                latencies.append((time.perf_counter() - sent[frames[0]]) * 1e6)
    reader.join(timeout=10)
    connection.close()
    sub.close(linger=0)
    herd.stop_all()
    latencies.sort()
    if latencies:
        print(f"  {len(latencies)} of {total} updates seen at Clark: "
              f"p50 {latencies[len(latencies) // 2]:.0f} us, "
              f"p99 {latencies[len(latencies) * 99 // 100]:.0f} us, "
              f"mean {statistics.mean(latencies):.0f} us (includes the Python client)")
    return latencies


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


def main():
    root = tempfile.mkdtemp(prefix="herd-bench-")
    try:
        throughput(root)
        propagation(root)
        catch_up(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
