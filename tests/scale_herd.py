#!/usr/bin/env python3
"""tests/scale_herd.py: a scale simulation (make scale, never make test).

Herds of 5, 10, 25 and 50 servers on this one machine, over topologies
written by tools/herd-graph, each server small (no places data, traffic
log off, journal without fsync) and secure as shipped. Per size and
topology it measures:

  - propagation: SCALE_UPDATES IAMATs, one at a time, at one server; a
    monitor SUB on every server's feed records when each update is
    published there; the time for an update to reach every server is the
    last of those minus the moment it was sent (p50, p99, max)
  - amplification: updates received per update, the sum over servers of the
    updates their SUBs took (STATS updates.received), divided by updates
  - catch-up: every server starts holding 100,000 clients (a journal
    written by herd_journal_gen); one server is killed, its journal
    deleted, and restarted: the time until it holds them all again

It prints a table and draws it (gnuplot) to build/scale.png.
"""

import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import zmq

sys.path.insert(0, os.path.dirname(__file__))
from conftest import Herd  # noqa: E402
from test_graph import herd_graph, hops  # noqa: E402

JOURNAL_GEN = os.environ.get("HERD_JOURNAL_GEN", "build/herd_journal_gen")
UPDATES = int(os.environ.get("SCALE_UPDATES", "100"))
CLIENTS = int(os.environ.get("SCALE_CLIENTS", "100000"))
SIZES = [int(size) for size in os.environ.get("SCALE_SIZES", "5 10 25 50").split()]
TOPOLOGIES = os.environ.get("SCALE_TOPOLOGIES", "ring chords regular:4").split()
PLOT = os.environ.get("SCALE_PLOT", "build/scale.png")


def start(folder, graph):
    os.makedirs(os.path.join(folder, "state"))
    herd = Herd(folder, graph, {"places/provider": "none", "places/workers": 1, "herd/log_traffic": 0,
                                "herd/fsync": "no", "herd/max_stored": CLIENTS + 10000})
    journal = os.path.join(folder, "state", "seed.journal")
    subprocess.run([JOURNAL_GEN, journal, str(CLIENTS), "1"], check=True, timeout=120)
    for name in graph:
        shutil.copy(journal, os.path.join(folder, "state", f"{name}.journal"))
    os.unlink(journal)
    for name in graph:
        herd.processes[name] = herd.spawn(name)
    for name in graph:
        herd.wait_ready(name, timeout=60)
    herd.wait_linked(list(graph), timeout=60)
    return herd


def propagation(herd, graph):
    """Per update: seconds until the last server published it."""
    context = zmq.Context.instance()
    subs = {}
    for name in graph:
        sub = herd.curve_client(context.socket(zmq.SUB), name)
        sub.setsockopt(zmq.SUBSCRIBE, b"scale")
        sub.setsockopt(zmq.LINGER, 0)
        sub.connect(f"tcp://127.0.0.1:{herd.feed_ports[name]}")
        subs[name] = sub
    poller = zmq.Poller()
    for sub in subs.values():
        poller.register(sub, zmq.POLLIN)
    names = {sub: name for name, sub in subs.items()}
    seen = {}                           #   client -> {server: time}
    done = threading.Event()

    def listen():
        while not done.is_set():
            for sub, _ in poller.poll(100):
                while True:
                    try:
                        frames = sub.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    seen.setdefault(frames[0].decode(), {})[names[sub]] = time.perf_counter()

    listener = threading.Thread(target=listen)
    listener.start()
    #   Slow joiner: wait until every SUB hears a warm-up update
    origin = next(iter(graph))
    deadline = time.monotonic() + 30
    while len(seen.get("scale-warmup", {})) < len(graph):
        assert time.monotonic() < deadline, "the SUBs never all joined"
        herd.iamat(origin, "scale-warmup", "+1+1", f"{time.time():.9f}")
        time.sleep(0.3)
    before = sum(herd.stats(name)["updates"]["heard"] for name in graph)
    sent = {}
    connection = herd.client(origin)
    for n in range(UPDATES):
        client = f"scale{n}"
        sent[client] = time.perf_counter()
        connection.send(f"IAMAT {client} +1+1 {time.time():.9f}\n")
        connection.line()
        time.sleep(0.02)
    connection.close()
    deadline = time.monotonic() + 10
    while any(len(seen.get(client, {})) < len(graph) for client in sent) and time.monotonic() < deadline:
        time.sleep(0.05)
    done.set()
    listener.join()
    for sub in subs.values():
        sub.close()
    after = sum(herd.stats(name)["updates"]["heard"] for name in graph)
    times = sorted(max(seen[client].values()) - sent[client] for client in sent
                   if len(seen.get(client, {})) == len(graph))
    return times, (after - before) / UPDATES, len(sent) - len(times)


def catch_up(herd, graph):
    """Seconds for a restarted server, journal deleted, to hold CLIENTS again."""
    name = list(graph)[-1]
    herd.kill(name, signal.SIGKILL)
    os.unlink(os.path.join(herd.folder, "state", f"{name}.journal"))
    started = time.perf_counter()
    herd.processes[name] = herd.spawn(name)
    herd.wait_ready(name, timeout=60)
    while True:
        state = herd.state(name, timeout=10)
        if state["caught_up"] and state["clients"] >= CLIENTS:
            return time.perf_counter() - started
        assert time.perf_counter() - started < 120, "no catch-up in 120 s"
        time.sleep(0.02)


def plot(rows, path):
    """p99 propagation and catch-up time against herd size, per topology."""
    data = path + ".dat"
    with open(data, "w") as file:
        for topology in TOPOLOGIES:
            file.write(f'"{topology}"\n')
            for row in rows:
                if row["topology"] == topology:
                    file.write(f"{row['size']} {row['p99'] * 1000:.2f} {row['amplification']:.2f} "
                               f"{row['catch_up']:.3f}\n")
            file.write("\n\n")
    script = f"""
set terminal png size 1200,450
set output "{path}"
set multiplot layout 1,3 title "herd on one 2-core machine: {UPDATES} updates, {CLIENTS} clients to catch up"
set xlabel "servers"
set key top left
set ylabel "ms"
set title "update reaches every server, p99"
plot for [i=0:{len(TOPOLOGIES) - 1}] "{data}" index i using 1:2 with linespoints title columnheader(1)
set ylabel "updates received per update"
set title "bus amplification"
plot for [i=0:{len(TOPOLOGIES) - 1}] "{data}" index i using 1:3 with linespoints title columnheader(1)
set ylabel "s"
set title "restarted server catches up"
plot for [i=0:{len(TOPOLOGIES) - 1}] "{data}" index i using 1:4 with linespoints title columnheader(1)
unset multiplot
"""
    subprocess.run(["gnuplot"], input=script, text=True, check=True)


def main():
    root = tempfile.mkdtemp(prefix="herd-scale-")
    rows = []
    print(f"scale: herds of {SIZES} servers over {TOPOLOGIES}; {UPDATES} updates one at a time; "
          f"catch-up of {CLIENTS} clients")
    print(f"\n  {'servers':>7} {'topology':10} {'links':>5} {'hops':>4}  {'p50 ms':>7} {'p99 ms':>7} "
          f"{'max ms':>7}  {'recv/update':>11}  {'catch-up s':>10}")
    try:
        for size in SIZES:
            for topology in TOPOLOGIES:
                graph = herd_graph.graph(size, topology)
                herd = start(os.path.join(root, f"{size}-{topology.replace(':', '')}"), graph)
                try:
                    times, amplification, lost = propagation(herd, graph)
                    seconds = catch_up(herd, graph)
                finally:
                    herd.stop_all()
                    shutil.rmtree(herd.folder, ignore_errors=True)
                links = sum(len(neighbours) for neighbours in graph.values()) // 2
                row = {"size": size, "topology": topology, "links": links, "hops": hops(graph),
                       "p50": statistics.median(times), "p99": times[int(len(times) * 0.99) - 1] if len(times) > 1 else times[0],
                       "max": times[-1], "amplification": amplification, "catch_up": seconds}
                rows.append(row)
                print(f"  {size:7} {topology:10} {links:5} {row['hops']:4}  {row['p50'] * 1000:7.2f} "
                      f"{row['p99'] * 1000:7.2f} {row['max'] * 1000:7.2f}  {amplification:11.1f}  "
                      f"{seconds:10.2f}" + (f"   ({lost} updates never reached all)" if lost else ""), flush=True)
        plot(rows, PLOT)
        print(f"\nplot: {PLOT}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
