#!/usr/bin/env python3
"""tests/bench_redis.py: herd against Redis, measured side by side in one
run (make bench). Both servers are driven by the project's own load
generator (build/herd_load) over 127.0.0.1, the servers pinned to one core
and the generator to the other; repetitions are interleaved and medians
reported, as ratios: these machines are shared and noisy.

  - throughput at 50 connections x 16 pipelined: Redis PING, GEOADD,
    GEOADD with appendonly everysec; herd with its defaults (traffic log
    on, journal everysec), with the traffic log off, and one server of
    the five-server herd (`make run`, everything sharing both cores)
  - latency at 1 connection x depth 1: p50 round trip
  - the five-server herd as a whole: 1,000,000 IAMATs for distinct
    clients at Bailey (50 connections x 16 pipelined), timed from the
    first until all five hold the same store, against one bare Redis
    taking the same 1,000,000 distinct GEOADD members and against the
    replicated peer, a Redis primary and four `--replicaof` replicas
    (without and with AOF everysec) timed until every replica's offset is
    the primary's; herd with the defaults, with a monitor subscribed to
    all of Clark's feed, with the traffic log off and with client_ttl on;
    the CPU an update costs every process of each system; and the CPU an
    update costs the five, CURVE on and off (BENCH_ONLY=wide runs the
    herd-wide part alone)
  - two-hop propagation (Bailey -> Bona -> Clark) at 1,000, 10,000, 50,000
    and 100,000 updates/s, against its floor: the same two hops through
    bare ZeroMQ relays (build/herd_relay, zmq_proxy) behind one server
    (BENCH_ONLY=hops runs this part alone)
  - memory for a million clients: herd's resident growth against Redis's
    used_memory for a million GEOADD members (BENCH_ONLY=memory)
  - instructions per IAMAT and per GEOADD, from callgrind
  - the TLS client port with its defaults (TLS 1.3, a client certificate,
    traffic log, journal) against Redis GEOADD over Redis's own TLS port
    (client certificates required, TLS 1.3) and against herd's plain
    port, 50 connections x 16 pipelined; and new TLS connections a second
    (connect, handshake, one command, close), herd against Redis
    (BENCH_ONLY=tls runs this part alone; BENCH_ONLY=one the throughput
    part at the top)
  - WHATSAT with the offline places against Redis GEOSEARCH over the same
    places: 500,000 clients at random points of 40-50 N 10-20 E, WHATSATs
    for them in turn (no point twice in a run), 50 connections x 4
    pipelined; GEOSEARCH 10 km, 20 nearest, with coordinates, at random
    points of the same box (BENCH_ONLY=whatsat runs this part alone)
"""

import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from conftest import Herd, free_ports, wait_converged  # noqa: E402
from bench_herd import pipelined_iamats  # noqa: E402

LOAD = os.environ.get("HERD_LOAD", "build/herd_load")
LATENCY = os.environ.get("HERD_LATENCY", "build/herd_latency")
RELAY = os.environ.get("HERD_RELAY", "build/herd_relay")
JOURNAL_GEN = os.environ.get("HERD_JOURNAL_GEN", "build/herd_journal_gen")
SERVER_CORE, LOAD_CORE = "0", "1"
SECONDS = float(os.environ.get("BENCH_SECONDS", "3"))
TTL_ON = 100 * 365 * 86400
REPETITIONS = int(os.environ.get("BENCH_REPETITIONS", "5"))


class PinnedHerd(Herd):
    """Servers pinned to one core, as Redis is in this bench."""
    pin = True

    def command(self, name):
        return (["taskset", "-c", SERVER_CORE] if self.pin else []) + super().command(name)


def make_herd(folder, graph, settings, pin=True, tls=None):
    os.makedirs(folder, exist_ok=True)
    herd = (PinnedHerd if pin else Herd)(folder, graph, {"places/provider": "none", **settings}, tls)
    return herd


class Redis:
    """A redis-server of our own on a free loopback port."""

    def __init__(self, folder, *options, valgrind=None, tls=None, pin=True):
        self.port = free_ports(1)[0]
        os.makedirs(folder, exist_ok=True)
        #   tls: (CA, certificate, key): only a TLS port, client certificates required
        listen = (["--port", "0", "--tls-port", str(self.port), "--tls-ca-cert-file", tls[0],
                   "--tls-cert-file", tls[1], "--tls-key-file", tls[2], "--tls-protocols", "TLSv1.3",
                   "--tls-auth-clients", "yes"] if tls else ["--port", str(self.port)])
        command = (["taskset", "-c", SERVER_CORE] if pin else []) + ["redis-server", *listen,
                   "--bind", "127.0.0.1", "--dir", folder, "--save", "", "--daemonize", "no",
                   "--logfile", os.path.join(folder, "redis.log"), *options]
        if valgrind:
            command = valgrind + command[3 if pin else 0:]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + (60 if valgrind else 10)
        while True:
            try:
                if tls:
                    socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                    return
                if self.call("PING") == b"+PONG":
                    return
            except OSError:
                pass
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

    def call(self, *words):
        with socket.create_connection(("127.0.0.1", self.port), timeout=60) as connection:
            connection.sendall((" ".join(words) + "\r\n").encode())
            return connection.makefile("rb").readline().rstrip()

    def info_text(self, section):
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as connection:
            connection.sendall(f"INFO {section}\r\n".encode())
            reader = connection.makefile("rb")
            size = int(reader.readline()[1:])
            return reader.read(size + 2).decode()

    def info(self, field, section="memory"):
        return int(re.search(rf"^{field}:(\d+)", self.info_text(section), re.M).group(1))

    def cpu(self):
        return cpu_seconds(self.process.pid)

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)


def load(port, connections, depth, *mode, prefix="load"):
    """One herd_load run: (rate/s, p50 us, p99 us)."""
    out = subprocess.run(["taskset", "-c", LOAD_CORE, LOAD, *mode, "127.0.0.1", str(port),
                          str(connections), str(depth), str(SECONDS), prefix],
                         capture_output=True, text=True, timeout=SECONDS + 60)
    match = re.search(r"([0-9.]+)/s, p50 (\d+) us, p99 (\d+) us, (\d+) errors", out.stdout)
    assert match and out.returncode == 0, (out.stdout, out.stderr)
    assert match.group(4) == "0", out.stdout
    return float(match.group(1)), int(match.group(2)), int(match.group(3))


def interleaved(cases):
    """Runs every case once a repetition, the cases interleaved, so a noisy
    stretch of the machine touches them all alike: each case's median
    (rate/s, p50 us, p99 us)."""
    runs = {label: [] for label in cases}
    for repetition in range(REPETITIONS):
        for label, run in cases.items():
            runs[label].append(run())
    return {label: tuple(statistics.median(run[i] for run in results) for i in range(3))
            for label, results in runs.items()}


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        return int(re.search(r"VmRSS:\s+(\d+)", status.read()).group(1))


def throughput(root):
    redis = Redis(os.path.join(root, "redis"), "--appendonly", "no")
    redis_aof = Redis(os.path.join(root, "redis-aof"), "--appendonly", "yes", "--appendfsync", "everysec")
    defaults = make_herd(os.path.join(root, "one"), {"Bailey": []}, {})
    quiet = make_herd(os.path.join(root, "quiet"), {"Bailey": []}, {"herd/log_traffic": 0})
    #   Expiry on (a century: the load's times are old, none may expire;
    #   the rule is checked on every update and the store swept all along)
    ttl = make_herd(os.path.join(root, "ttl"), {"Bailey": []}, {"herd/client_ttl": TTL_ON})
    #   make run's herd: five servers and the generator share both cores
    five = make_herd(os.path.join(root, "five"), None, {}, pin=False)
    for herd in (defaults, quiet, five, ttl):
        herd.start()
    herd_wide = []

    def five_servers():
        #   Until all five hold it all: the herd's own rate, and no backlog
        #   left to slow the next case down
        started = time.monotonic()
        result = load(five.client_ports["Bailey"], 50, 16)
        five.wait_converged(timeout=600)
        herd_wide.append(result[0] * SECONDS / (time.monotonic() - started))
        return result
    cases = {
        "Redis PING": lambda: load(redis.port, 50, 16, "--redis-ping"),
        "Redis GEOADD": lambda: load(redis.port, 50, 16, "--redis-geoadd", prefix="herd"),
        "Redis GEOADD+AOF everysec": lambda: load(redis_aof.port, 50, 16, "--redis-geoadd", prefix="herd"),
        "herd, defaults": lambda: load(defaults.client_ports["Bailey"], 50, 16),
        "herd, traffic log off": lambda: load(quiet.client_ports["Bailey"], 50, 16),
        "herd, client_ttl on": lambda: load(ttl.client_ports["Bailey"], 50, 16),
        "herd, five servers (Bailey)": five_servers,
        "Redis GEOADD 1x1": lambda: load(redis.port, 1, 1, "--redis-geoadd", prefix="one"),
        "herd, defaults 1x1": lambda: load(defaults.client_ports["Bailey"], 1, 1),
    }
    try:
        figures = interleaved(cases)
    finally:
        for herd in (defaults, quiet, five, ttl):
            herd.stop_all()
        redis.stop()
        redis_aof.stop()
    figures["herd, five servers, herd-wide"] = (statistics.median(herd_wide), 0, 0)
    return figures


class ReplicatedRedis:
    """The peer a herd user compares with: a Redis primary and four
    `--replicaof` replicas (unpinned, as the herd runs), fresh each time."""

    def __init__(self, folder, *options):
        self.primary = Redis(os.path.join(folder, "primary"), *options, pin=False)
        self.replicas = [Redis(os.path.join(folder, f"replica{n}"), *options, "--replicaof", "127.0.0.1",
                               str(self.primary.port), pin=False) for n in range(4)]
        deadline = time.monotonic() + 60
        while not all("master_link_status:up" in replica.info_text("replication") for replica in self.replicas):
            assert time.monotonic() < deadline, "the replicas never linked"
            time.sleep(0.05)

    def servers(self):
        return [self.primary] + self.replicas

    def wait_replicated(self, timeout=600):
        """Until every replica's offset is the primary's"""
        deadline = time.monotonic() + timeout
        while True:
            offset = self.primary.info("master_repl_offset", "replication")
            if all(replica.info("slave_repl_offset", "replication") >= offset for replica in self.replicas):
                return
            assert time.monotonic() < deadline, "the replicas never caught up"
            time.sleep(0.005)

    def stop(self):
        for server in reversed(self.servers()):
            server.stop()


def herd_wide(root, total=1000000):
    """The shipped five-server herd (defaults, unpinned as make run runs
    it) taking total distinct clients at Bailey until all five agree, with
    and without a monitor on Clark's feed and the traffic log; one bare
    Redis taking the same GEOADDs; a Redis primary and four replicas,
    without and with AOF everysec, taking them until every replica's
    offset is the primary's. Medians of the repetitions: (rate a second,
    CPU us an update, all processes of the system together)."""
    monitor_bin = os.environ.get("HERD_MONITOR", "build/herd-monitor")
    redis = Redis(os.path.join(root, "redis-wide"), "--appendonly", "no")
    runs = {label: [] for label in ("Redis GEOADD", "Redis primary + 4 replicas",
                                    "Redis primary + 4 replicas, AOF everysec", "herd",
                                    "herd + monitor on Clark's feed", "herd, traffic log off",
                                    "herd, client_ttl on")}
    try:
        for repetition in range(min(REPETITIONS, 3)):
            before = redis.cpu()
            runs["Redis GEOADD"].append((load(redis.port, 50, 16, "--distinct", str(total), "--redis-geoadd",
                                              prefix=f"wide{repetition}")[0], (redis.cpu() - before) / total * 1e6))
            for label, options in (("Redis primary + 4 replicas", ("--appendonly", "no")),
                                   ("Redis primary + 4 replicas, AOF everysec",
                                    ("--appendonly", "yes", "--appendfsync", "everysec"))):
                replicated = ReplicatedRedis(os.path.join(root, f"replicated-{repetition}-{len(runs[label])}"),
                                             *options)
                try:
                    before = sum(server.cpu() for server in replicated.servers())
                    started = time.monotonic()
                    out = subprocess.run(["taskset", "-c", LOAD_CORE, LOAD, "--distinct", str(total),
                                          "--redis-geoadd", "127.0.0.1", str(replicated.primary.port), "50", "16",
                                          "600", "wide"], capture_output=True, text=True, timeout=700)
                    assert out.returncode == 0 and " 0 errors" in out.stdout, out.stdout
                    replicated.wait_replicated()
                    elapsed = time.monotonic() - started
                    cpu = sum(server.cpu() for server in replicated.servers()) - before
                    runs[label].append((total / elapsed, cpu / total * 1e6))
                finally:
                    replicated.stop()
            for label, settings in (("herd", {}), ("herd + monitor on Clark's feed", {}),
                                    ("herd, traffic log off", {"herd/log_traffic": 0}),
                                    ("herd, client_ttl on", {"herd/client_ttl": TTL_ON})):
                five = make_herd(os.path.join(root, f"wide-{repetition}-{len(runs[label])}-{label[:12]}"),
                                 None, settings, pin=False)
                five.start()
                monitor = None
                if "monitor" in label:
                    monitor = subprocess.Popen([monitor_bin, "--config", five.config, "--stats", "Clark"],
                                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    #   Subscribed: Clark's feed says so
                    deadline = time.monotonic() + 30
                    while five.stats("Clark")["feed"]["subscriptions"] == 0:
                        assert time.monotonic() < deadline, "the monitor never subscribed"
                        time.sleep(0.05)
                before = sum(cpu_seconds(process.pid) for process in five.processes.values())
                started = time.monotonic()
                out = subprocess.run(["taskset", "-c", LOAD_CORE, LOAD, "--distinct", str(total), "127.0.0.1",
                                      str(five.client_ports["Bailey"]), "50", "16", "600", "wide"],
                                     capture_output=True, text=True, timeout=700)
                assert out.returncode == 0 and " 0 errors" in out.stdout, out.stdout
                #   Asked as often as the replicas' offsets are (5 ms), so
                #   neither system's figure carries a coarser end
                states = wait_converged(five.state, list(five.processes), timeout=600, pause=0.005)
                elapsed = time.monotonic() - started
                cpu = sum(cpu_seconds(process.pid) for process in five.processes.values()) - before
                assert all(state["clients"] == total for state in states.values()), states
                if monitor:
                    sent = five.stats("Clark")["feed"]["sent"]
                    assert sent >= total, sent
                    monitor.terminate()
                    monitor.wait(timeout=10)
                runs[label].append((total / elapsed, cpu / total * 1e6))
                five.stop_all()
                shutil.rmtree(five.folder, ignore_errors=True)
    finally:
        redis.stop()
    return {label: (statistics.median(run[0] for run in results), statistics.median(run[1] for run in results))
            for label, results in runs.items()}


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def herd_cpu(root, count=50000):
    """CPU time all five servers spend on one update (utime + stime, from a
    pipelined burst at Bailey until all five hold it), CURVE on and off."""
    figures = {}
    for security in ("on", "off"):
        five = make_herd(os.path.join(root, f"cpu-{security}"), None, {"herd/security": security}, pin=False)
        five.start()
        before = sum(cpu_seconds(process.pid) for process in five.processes.values())
        pipelined_iamats(five, "Bailey", count, "cpu", batch=500)
        five.wait_converged(timeout=600)
        after = sum(cpu_seconds(process.pid) for process in five.processes.values())
        five.stop_all()
        figures[security] = (after - before) / count * 1e6
    return figures


def probe(port, bus, rate, keys):
    """herd_latency: IAMATs at rate/s to port, seen on the feed endpoint."""
    out = subprocess.run([LATENCY, "127.0.0.1", str(port), bus, str(rate), "2", *keys],
                         capture_output=True, text=True, timeout=120)
    match = re.search(r"p50 (\d+) us, p99 (\d+) us", out.stdout)
    assert match and out.returncode == 0, (out.stdout, out.stderr)
    return int(match.group(1)), int(match.group(2))


HOP_RATES = (1000, 10000, 50000, 100000)


def propagation(root, rates=HOP_RATES):
    """Two hops, Bailey -> Bona -> Clark in make run's herd (defaults), and
    the floor under them: one server, then two bare ZeroMQ relays, every
    link CURVE. (p50, p99) in us at each rate a second."""
    figures = {}
    five = make_herd(os.path.join(root, "propagation"), None, {}, pin=False)
    five.start()
    keys = [os.path.join(five.keys, "secret", "monitor.key_secret"),
            os.path.join(five.keys, "public", "Clark.key")]
    for rate in rates:
        figures[("herd", rate)] = probe(five.client_ports["Bailey"],
                                        f"tcp://127.0.0.1:{five.feed_ports['Clark']}", rate, keys)
    five.stop_all()
    #   The floor: Bailey alone, relayed by two zmq_proxy processes that
    #   hold Bona's and Campbell's keys
    floor = make_herd(os.path.join(root, "floor"), {"Bailey": [], "Bona": [], "Campbell": []}, {}, pin=False)
    floor.start("Bailey")
    secret = lambda name: os.path.join(floor.keys, "secret", f"{name}.key_secret")
    public = lambda name: os.path.join(floor.keys, "public", f"{name}.key")
    first, second = free_ports(2)
    relays = [subprocess.Popen([RELAY, f"tcp://127.0.0.1:{floor.feed_ports['Bailey']}",
                                f"tcp://127.0.0.1:{first}", secret("Bona"), public("Bailey")]),
              subprocess.Popen([RELAY, f"tcp://127.0.0.1:{first}", f"tcp://127.0.0.1:{second}",
                                secret("Campbell"), public("Bona")])]
    try:
        keys = [secret("monitor"), public("Campbell")]
        for rate in rates:
            figures[("floor", rate)] = probe(floor.client_ports["Bailey"], f"tcp://127.0.0.1:{second}",
                                             rate, keys)
    finally:
        for relay in relays:
            relay.terminate()
            relay.wait(timeout=10)
        floor.stop_all()
    return figures


def memory(root, clients=1000000):
    """Resident bytes per stored client: herd against Redis's used_memory."""
    herd = make_herd(os.path.join(root, "memory"), {"Bailey": []},
                     {"herd/log_traffic": 0, "herd/max_stored": clients + 1000})
    herd.start()
    empty = rss_kib(herd.processes["Bailey"].pid)
    herd.stop_all()
    shutil.rmtree(os.path.join(herd.folder, "state"), ignore_errors=True)
    subprocess.run([JOURNAL_GEN, os.path.join(herd.folder, "state", "Bailey.journal"), str(clients), "1"],
                   check=True, timeout=300)
    started = time.monotonic()
    herd.start()                    #   Returns once the client port takes connections
    restart = time.monotonic() - started
    assert herd.state("Bailey", timeout=10)["clients"] == clients
    time.sleep(1.5)                 #   Past the first tick: nothing left to settle
    full = rss_kib(herd.processes["Bailey"].pid)
    herd.stop_all()
    redis = Redis(os.path.join(root, "redis-memory"), "--appendonly", "no")
    before = redis.info("used_memory")
    with socket.create_connection(("127.0.0.1", redis.port)) as connection:
        reader = connection.makefile("rb")
        for start in range(0, clients, 10000):
            connection.sendall("".join(f"GEOADD herd -{n % 170}.25 {n % 80}.5 gen{n}\r\n"
                                       for n in range(start, start + 10000)).encode())
            for _ in range(10000):
                reader.readline()
    after = redis.info("used_memory")
    redis.stop()
    return (full - empty) * 1024 / clients, (after - before) / clients, restart


def instructions(root, count=20000):
    """Instructions per command from callgrind: two runs, N and 2N commands,
    so what start and stop cost cancels out."""
    valgrind = ["valgrind", "--tool=callgrind"]
    figures = {}
    for kind in ("herd", "herd, log off", "redis"):
        totals = []
        for n in (count, 2 * count):
            out = os.path.join(root, f"callgrind-{kind}-{n}.out")
            if kind.startswith("herd"):
                settings = {"herd/log_traffic": 0} if "log off" in kind else {}
                herd = make_herd(os.path.join(root, f"callgrind-{len(figures)}-{n}"), {"Bailey": []}, settings,
                                 pin=False)
                herd.command = lambda name, out=out: valgrind + [f"--callgrind-out-file={out}", herd_bin()]
                herd.processes["Bailey"] = herd.spawn("Bailey")
                herd.wait_ready("Bailey", timeout=120)
                port, command = herd.client_ports["Bailey"], "IAMAT c{n} +1+1 {t}\n"
            else:
                redis = Redis(os.path.join(root, f"callgrind-{kind}-{n}"), "--appendonly", "no",
                              valgrind=valgrind + [f"--callgrind-out-file={out}"])
                port, command = redis.port, "GEOADD herd 1 1 c{n}\r\n"
            with socket.create_connection(("127.0.0.1", port), timeout=120) as connection:
                reader = connection.makefile("rb")
                for start in range(0, n, 1000):
                    connection.sendall("".join(command.format(n=i, t=1000 + i)
                                               for i in range(start, start + 1000)).encode())
                    for _ in range(1000):
                        reader.readline()
            if kind.startswith("herd"):
                herd.kill("Bailey", signal.SIGTERM)
            else:
                redis.stop()
            with open(out) as file:
                totals.append(int(re.search(r"^(?:summary|totals): (\d+)", file.read(), re.M).group(1)))
        figures[kind] = (totals[1] - totals[0]) / count
    return figures


def tls(root):
    """The TLS port against Redis's TLS port and herd's plain port, and
    handshakes a second, interleaved: medians (rate/s, p50 us, p99 us)."""
    herd = make_herd(os.path.join(root, "tls"), {"Bailey": []}, {}, tls="on")
    herd.start()
    cert, key = herd.client_cert("", prefix=True)
    ca = os.path.join(herd.keys, "ca.crt")
    #   Redis gets a server certificate from the same CA (the key readable
    #   by redis-server, running as us)
    redis_key = os.path.join(root, "redis-tls.key")
    shutil.copy(os.path.join(herd.keys, "secret", "Bailey.pem"), redis_key)
    redis = Redis(os.path.join(root, "redis-tls"), "--appendonly", "no",
                  tls=(ca, os.path.join(herd.keys, "Bailey.crt"), redis_key))
    client = ("--tls", ca, cert, key)
    cases = {
        "Redis GEOADD over TLS": lambda: load(redis.port, 50, 16, "--redis-geoadd", *client, prefix="tls"),
        "herd TLS port": lambda: load(herd.tls_ports["Bailey"], 50, 16, *client),
        "herd plain port": lambda: load(herd.client_ports["Bailey"], 50, 16),
        "Redis TLS handshakes": lambda: load(redis.port, 20, 1, "--redis-ping", *client, "--handshakes"),
        "herd TLS handshakes": lambda: load(herd.tls_ports["Bailey"], 20, 1, *client, "--handshakes"),
    }
    try:
        return interleaved(cases)
    finally:
        herd.stop_all()
        redis.stop()


def print_tls(figures):
    print(f"\n  {'TLS, 50 connections x 16 pipelined':34} {'rate/s':>10} {'p50 us':>8} {'p99 us':>8}")
    for label, (rate, p50, p99) in figures.items():
        if "handshakes" not in label:
            print(f"  {label:34} {rate:10.0f} {p50:8.0f} {p99:8.0f}")
    print(f"  new TLS connections a second (20 at once, connect + handshake + one command): "
          f"herd {figures['herd TLS handshakes'][0]:.0f}, Redis {figures['Redis TLS handshakes'][0]:.0f}")
    herd = figures["herd TLS port"][0]
    print("\n  ratio                                           measured   target")
    print(f"  {'herd TLS : Redis GEOADD over TLS':46} {herd / figures['Redis GEOADD over TLS'][0]:8.2f}   >= 1.0")
    print(f"  {'herd TLS : herd plain port':46} {herd / figures['herd plain port'][0]:8.2f}   >= 0.7")
    print(f"  {'handshakes herd : Redis':46} "
          f"{figures['herd TLS handshakes'][0] / figures['Redis TLS handshakes'][0]:8.2f}")


def places_records():
    """The offline places file's records: (latitude, longitude, place id),
    degrees (tools/places-data.py's format: a 24-byte header, then six
    little-endian 32-bit fields a place, then the strings)."""
    import struct
    with open(os.environ.get("HERD_PLACES_DATA", "data/places.bin"), "rb") as file:
        data = file.read()
    magic, count, strings_size = struct.unpack_from("<8sII", data)
    assert magic == b"HERDPLC1", magic
    strings = 24 + count * 24
    for index in range(count):
        latitude, longitude, _, _, _, place_id = struct.unpack_from("<iiIIII", data, 24 + index * 24)
        end = data.index(b"\0", strings + place_id)
        yield latitude / 1e6, longitude / 1e6, data[strings + place_id:end].decode()


def whatsat(root, clients=500000):
    """WHATSAT against Redis GEOSEARCH over the same places: one server
    with the offline places, clients at random points of 40-50 N 10-20 E
    (dense places), 50 connections x 4 pipelined, each asking for its own
    10,000 clients in turn (herd_load's ids: no point asked twice in a
    run, so no answer could come from a cache); Redis GEOSEARCH of
    the same places (a geo set of every place Redis takes: |latitude| <=
    85.05) at random points of the same box, 10 km, 20 nearest, with
    coordinates. Medians of the repetitions: (rate/s, p50 us, p99 us)."""
    import random
    redis = Redis(os.path.join(root, "redis-places"), "--appendonly", "no")
    with socket.create_connection(("127.0.0.1", redis.port), timeout=60) as connection:
        reader, batch, sent = connection.makefile("rb"), [], 0
        for latitude, longitude, place_id in places_records():
            if abs(latitude) <= 85.05:
                batch.append(f"GEOADD places {longitude} {latitude} {place_id}\r\n")
            if len(batch) == 5000:
                connection.sendall("".join(batch).encode())
                for _ in batch:
                    assert reader.readline()[:1] == b":"
                sent += len(batch)
                batch = []
        connection.sendall("".join(batch).encode())
        for _ in batch:
            assert reader.readline()[:1] == b":"
    herds = {}
    for label, settings in (("herd WHATSAT, defaults", {}),
                            ("herd WHATSAT, traffic log off", {"herd/log_traffic": 0})):
        herd = make_herd(os.path.join(root, f"whatsat-{len(herds)}"), {"Bailey": []},
                         {"places/provider": "offline", **settings})
        herd.start()
        rng = random.Random(34)
        with socket.create_connection(("127.0.0.1", herd.client_ports["Bailey"]), timeout=60) as connection:
            reader = connection.makefile("rb")
            per_connection = clients // 50
            for number in range(50):
                lines = [f"IAMAT w{number}.{n} {40 + rng.random() * 10:+.6f}{10 + rng.random() * 10:+.6f} "
                         f"{1000 + n}\n" for n in range(per_connection)]
                connection.sendall("".join(lines).encode())
                for _ in lines:
                    assert reader.readline()[:2] == b"AT"
        herds[label] = herd
    cases = {"Redis GEOSEARCH": lambda: load(redis.port, 50, 4, "--redis-geosearch")}
    for label, herd in herds.items():
        cases[label] = lambda herd=herd: load(herd.client_ports["Bailey"], 50, 4, "--whatsat", prefix="w")
    try:
        return interleaved(cases)
    finally:
        for herd in herds.values():
            herd.stop_all()
        redis.stop()


def print_whatsat(figures):
    print(f"\n  {'places near a point, 50 x 4 pipelined':34} {'rate/s':>10} {'p50 us':>8} {'p99 us':>8}")
    for label, (rate, p50, p99) in figures.items():
        print(f"  {label:34} {rate:10.0f} {p50:8.0f} {p99:8.0f}")
    geosearch = figures["Redis GEOSEARCH"][0]
    print("\n  ratio                                           measured   target")
    print(f"  {'WHATSAT (defaults) : GEOSEARCH':46} {figures['herd WHATSAT, defaults'][0] / geosearch:8.2f}   >= 1.0")
    print(f"  {'WHATSAT (traffic log off) : GEOSEARCH':46} "
          f"{figures['herd WHATSAT, traffic log off'][0] / geosearch:8.2f}")


def print_wide(wide, total=1000000):
    print(f"\n  the five-server herd as a whole: {total:,} distinct clients at Bailey (50 x 16) until all "
          "five agree;\n  Redis until every replica's offset is the primary's; CPU: every process of the system")
    bare = wide["Redis GEOADD"][0]
    for label, (rate, cpu) in wide.items():
        print(f"  {label:42} {rate:10.0f}/s  {rate / bare:6.2f}x bare Redis  {cpu:6.1f} us CPU an update")
    herd, herd_cpu_us = wide["herd"]
    print("\n  ratio                                           measured   target")
    print(f"  {'herd-wide : one bare Redis GEOADD':46} {herd / bare:8.2f}   >= 1.0")
    print(f"  {'herd-wide : Redis primary + 4 replicas':46} {herd / wide['Redis primary + 4 replicas'][0]:8.2f}")
    print(f"  {'herd-wide : Redis primary + 4 replicas, AOF':46} "
          f"{herd / wide['Redis primary + 4 replicas, AOF everysec'][0]:8.2f}")
    print(f"  {'herd CPU an update, all five (us)':46} {herd_cpu_us:8.1f}   <= 4")
    watched = wide["herd + monitor on Clark's feed"][0]
    print(f"  {'monitor on the feed : none':46} {watched / herd:8.2f}   >= 0.8")
    print(f"  {'traffic log on : off, herd-wide':46} {herd / wide['herd, traffic log off'][0]:8.2f}   >= 0.8")
    print(f"  {'client_ttl on : off, herd-wide':46} {wide['herd, client_ttl on'][0] / herd:8.2f}   >= 0.95")


def print_hops(hops):
    print("\n  two hops, IAMAT at Bailey to the update on Clark's feed, CURVE on every link, against the floor:\n"
          "  the same two hops through bare ZeroMQ relays (zmq_proxy) behind one server, in the same run")
    for rate in HOP_RATES:
        (herd_p50, herd_p99), (floor_p50, floor_p99) = hops[("herd", rate)], hops[("floor", rate)]
        print(f"  {rate:>7,}/s: herd p50 {herd_p50:6} us p99 {herd_p99:6} us; relays p50 {floor_p50:6} us "
              f"p99 {floor_p99:6} us; herd : floor p99 {herd_p99 / max(1, floor_p99):5.2f}x")
    top = HOP_RATES[-1]
    print(f"  two-hop p99 at {top:,}/s: {hops[('herd', top)][1] / 1000:.2f} ms (target <= 5 ms, "
          f"and <= 2x the floor's {hops[('floor', top)][1] / 1000:.2f} ms)")


def print_throughput(figures):
    geoadd = figures["Redis GEOADD"][0]
    print(f"\n  {'50 connections x 16 pipelined':34} {'rate/s':>10} {'p50 us':>8} {'p99 us':>8}  vs GEOADD")
    for label, (rate, p50, p99) in figures.items():
        if "1x1" not in label:
            print(f"  {label:34} {rate:10.0f} {p50:8.0f} {p99:8.0f}  {rate / geoadd:6.2f}x")
    print(f"\n  1 connection x depth 1, p50 round trip: herd (defaults) {figures['herd, defaults 1x1'][1]} us, "
          f"Redis GEOADD {figures['Redis GEOADD 1x1'][1]} us")
    herd = figures["herd, defaults"][0]
    ratios = [
        ("herd defaults : Redis GEOADD", herd / geoadd, ">= 0.8"),
        ("herd defaults : Redis GEOADD+AOF everysec", herd / figures["Redis GEOADD+AOF everysec"][0], ">= 1.0"),
        ("herd defaults : Redis PING", herd / figures["Redis PING"][0], ""),
        ("traffic log on : off", herd / figures["herd, traffic log off"][0], ">= 0.8"),
        ("client_ttl on : off", figures["herd, client_ttl on"][0] / herd, ">= 0.95"),
        ("five servers (Bailey) : Redis GEOADD", figures["herd, five servers (Bailey)"][0] / geoadd, ">= 0.5"),
        ("five servers, herd-wide : Redis GEOADD", figures["herd, five servers, herd-wide"][0] / geoadd, ""),
        ("five servers : one server", figures["herd, five servers (Bailey)"][0] / herd, ""),
        ("p50 1x1 herd : Redis GEOADD",
         figures["herd, defaults 1x1"][1] / max(1, figures["Redis GEOADD 1x1"][1]), "<= 1.1"),
    ]
    print("\n  ratio                                           measured   target")
    for label, value, target in ratios:
        print(f"  {label:46} {value:8.2f}   {target}")


def print_memory(per_herd, per_redis, restart):
    print(f"\n  memory per client, 1,000,000 clients: herd {per_herd:.0f} B resident, "
          f"Redis {per_redis:.0f} B used_memory ({per_herd / per_redis:.2f}x; target herd <= Redis)")
    print(f"  restart with 1,000,000 clients in the journal: {restart:.2f} s to listening (target <= 1 s)")


def herd_bin():
    from conftest import HERD_BIN
    return HERD_BIN


def main():
    root = tempfile.mkdtemp(prefix="herd-bench-redis-")
    try:
        print(f"herd against Redis {subprocess.run(['redis-server', '--version'], capture_output=True, text=True).stdout.split()[2][2:]}, "
              f"servers on core {SERVER_CORE}, herd_load on core {LOAD_CORE}, {SECONDS:.0f} s a run, "
              f"medians of {REPETITIONS} interleaved repetitions")
        if os.environ.get("BENCH_ONLY") == "tls":
            print_tls(tls(root))
            return
        if os.environ.get("BENCH_ONLY") == "memory":
            print_memory(*memory(root))
            return
        if os.environ.get("BENCH_ONLY") == "hops":
            print_hops(propagation(root))
            return
        if os.environ.get("BENCH_ONLY") == "wide":
            print_wide(herd_wide(root))
            return
        if os.environ.get("BENCH_ONLY") == "whatsat":
            print_whatsat(whatsat(root))
            return
        figures = throughput(root)
        print_throughput(figures)
        if os.environ.get("BENCH_ONLY") == "one":
            return
        wide = herd_wide(root)
        print_wide(wide)
        cpu = herd_cpu(root)
        print(f"\n  CPU per update, all five servers together: {cpu['on']:.1f} us with CURVE (target <= 4), "
              f"{cpu['off']:.1f} us without ({cpu['on'] / cpu['off']:.2f}x); on {os.cpu_count()} cores "
              f"that caps the herd near {os.cpu_count() * 1e6 / cpu['on']:.0f} updates/s")
        print_hops(propagation(root))
        print_memory(*memory(root))
        counts = instructions(root)
        print(f"  instructions per command (callgrind): IAMAT {counts['herd']:.0f} "
              f"(traffic log off: {counts['herd, log off']:.0f}), GEOADD {counts['redis']:.0f} "
              f"({counts['herd'] / counts['redis']:.2f}x)")
        print_tls(tls(root))
        print_whatsat(whatsat(root))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
