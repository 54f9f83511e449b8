"""Test harness: each test starts its own herd of real `herd` processes on
127.0.0.1 (free ports, its own config and log folder) and talks TCP and
ZeroMQ to them. The only fake is GoogleStandIn, a local HTTP server that
plays Google's Places API."""

import http.server
import json
import os
import re
import resource
import signal
import socket
import ssl
import subprocess
import threading
import time
import urllib.parse

import pytest
import zmq
import zmq.auth

PLACES_DATA = os.path.abspath(os.environ.get(
    "HERD_PLACES_DATA", os.path.join(os.path.dirname(__file__), "..", "data", "places.bin")))
HERD_BIN = os.path.abspath(os.environ.get(
    "HERD_BIN", os.path.join(os.path.dirname(__file__), "..", "build", "herd")))
DEFAULT_GRAPH = {
    "Bailey": ["Campbell", "Bona"],
    "Bona": ["Clark", "Campbell", "Bailey"],
    "Campbell": ["Bailey", "Bona", "Jaquez"],
    "Clark": ["Jaquez", "Bona"],
    "Jaquez": ["Clark", "Campbell"],
}
AT_PATTERN = re.compile(rb"^AT (\S+) ([+-]\d+\.\d{9}) (\S+) (\S+) (\S+)$")

#   1,000 connections need more than the default 1,024 fds
_soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (_hard, _hard))

#   Servers start with SIGINT and SIGTERM at their defaults, as a service
#   manager starts them. A shell starts a background job (`make test &`)
#   with SIGINT ignored, which its children inherit: a signal that comes
#   before a server could block it would then be dropped, not delivered.
for _signal, _default in ((signal.SIGINT, signal.default_int_handler), (signal.SIGTERM, signal.SIG_DFL)):
    if signal.getsignal(_signal) == signal.SIG_IGN:
        signal.signal(_signal, _default)


#   The bus format of this build's messages (core/herd_limits.h)
BUS_FORMAT = 2


def bus_batch(server, sequence, *lines):
    """A bus message as a server sends its neighbours (docs/PROTOCOL.md):
    one frame, a head, then the AT lines."""
    head = f"BATCH/{BUS_FORMAT} {server} {sequence} {len(lines)}\n".encode()
    return head + b"".join(line + b"\n" for line in lines)


def bus_heartbeat(server, sequence):
    return f"HEARTBEAT/{BUS_FORMAT} {server} {sequence}".encode()


#   Below the kernel's ephemeral range (32768-60999 by default), so no
#   outgoing connection can take a port between our pick and the bind
PORT_RANGE = (20000, 32000)


def free_ports(count):
    """Ports free right now on 127.0.0.1, outside the ephemeral range (held
    open together so they differ). Another test run may still take one:
    Herd.start picks again when a server finds its port taken."""
    import random
    sockets, ports = [], []
    while len(ports) < count:
        sock = socket.socket()
        try:
            sock.bind(("127.0.0.1", random.randint(*PORT_RANGE)))
        except OSError:
            sock.close()
            continue
        sockets.append(sock)
        ports.append(sock.getsockname()[1])
    for sock in sockets:
        sock.close()
    return ports


class Client:
    """A line client over one TCP connection, with a deadline on every read."""

    def __init__(self, port, timeout=10, host="127.0.0.1"):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("server closed the connection")
        self.buffer += chunk

    def line(self):
        while b"\n" not in self.buffer:
            self._fill()
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line

    def until_blank(self):
        """A WHATSAT reply: lines up to the first empty line."""
        while b"\n\n" not in self.buffer:
            self._fill()
        reply, self.buffer = self.buffer.split(b"\n\n", 1)
        return reply

    def whatsat(self, client, radius, count):
        self.send(f"WHATSAT {client} {radius} {count}\n")
        at_line, text = self.until_blank().split(b"\n", 1)
        return at_line, json.loads(text)

    def closed(self):
        """True once the server has closed (EOF or reset), reading what is left."""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buffer += chunk
        except (ConnectionResetError, BrokenPipeError):
            return True

    def half_close(self):
        """Ends what we send (the server reads to the end), still reading."""
        self.sock.shutdown(socket.SHUT_WR)

    def close(self):
        self.sock.close()


class TlsClient(Client):
    """The same line client over TLS, through memory BIOs: self.sock stays
    the raw TCP socket, so a test can half-close it, reset it or shrink its
    buffer as on the plain port. cert and key: a client certificate (PEM),
    or None to show none. The constructor runs the handshake; in TLS 1.3
    the server judges the client's certificate after the client has
    finished, so a refusal shows as the first read failing."""

    def __init__(self, port, ca, cert=None, key=None, timeout=10, host="127.0.0.1", version=None):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.load_verify_locations(ca)
        if version:
            context.minimum_version = context.maximum_version = version
        if cert:
            context.load_cert_chain(cert, key)
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_hostname=host)
        self.buffer = self.unsent = b""
        while True:
            try:
                self.tls.do_handshake()
                self._send_out()
                break
            except ssl.SSLWantReadError:
                self._send_out()
                self._receive()

    def _send_out(self):
        #   Record bytes a timed-out send left are sent first: a TLS stream
        #   must never lose a byte
        self.unsent += self.outgoing.read()
        while self.unsent:
            sent = self.sock.send(self.unsent)
            self.unsent = self.unsent[sent:]

    def _receive(self):
        raw = self.sock.recv(65536)
        if not raw:
            raise EOFError("server closed the connection")
        self.incoming.write(raw)

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.tls.write(data)
        self._send_out()

    def _fill(self):
        while True:
            try:
                chunk = self.tls.read(65536)
            except ssl.SSLWantReadError:
                self._receive()
                continue
            except ssl.SSLZeroReturnError:
                chunk = b""
            if not chunk:
                raise EOFError("server closed the connection (close_notify)")
            self.buffer += chunk
            return

    def closed(self):
        try:
            while True:
                self._fill()
        except (EOFError, ConnectionResetError, BrokenPipeError, ssl.SSLError):
            return True

    def half_close(self):
        """close_notify, then the TCP half-close: a clean end of what we send."""
        try:
            self.tls.unwrap()
        except ssl.SSLWantReadError:
            pass
        self._send_out()
        self.sock.shutdown(socket.SHUT_WR)


def refused_over_tls(make_client):
    """True if a TLS client is refused: its handshake fails, or (TLS 1.3)
    its first command is never answered because the server closed."""
    try:
        client = make_client()
        client.send(b"IAMAT refused +1+1 1\n")
        client.line()
    except (ssl.SSLError, EOFError, ConnectionResetError, BrokenPipeError):
        return True
    return False


def iamat(connection, client, coordinates, client_time):
    """One IAMAT on a fresh connection (closed after): the reply line."""
    connection.send(f"IAMAT {client} {coordinates} {client_time}\n")
    reply = connection.line()
    connection.close()
    return reply


def wait_converged(state, names, timeout=10, pause=0.1):
    """Waits until state(name) of every name reports the same store (size
    and digest); returns the states. Local herds and the docker cluster
    differ only in how they ask."""
    deadline = time.monotonic() + timeout
    while True:
        states = {name: state(name) for name in names}
        stores = {(state["clients"], state["digest"]) for state in states.values()}
        if len(stores) == 1:
            return states
        if time.monotonic() > deadline:
            raise AssertionError("stores differ: " + ", ".join(
                f"{name} {state['clients']} {state['digest']}" for name, state in states.items()))
        time.sleep(pause)


class Herd:
    """A herd of real servers with their own config, ports and logs."""

    def __init__(self, folder, graph=None, settings=None, tls=None):
        self.folder = folder
        self.graph = graph or DEFAULT_GRAPH
        self.settings = settings or {}
        #   None: the plain port alone; "on": a TLS port beside it; "only":
        #   the TLS port alone (client = off)
        self.tls = tls
        self.env = dict(os.environ)
        self.env.pop("HERD_GOOGLE_API_KEY", None)
        self.pick_ports()
        self.hosts = {name: "127.0.0.1" for name in self.graph}
        self.processes = {}
        self.config = os.path.join(folder, "herd.cfg")
        self.keys = os.path.join(folder, "keys")
        self.write_config()
        #   Secure by default, as users run it: every server's keys and a
        #   monitor's, made as `make run` makes them
        if self.secure or self.tls:
            subprocess.run([HERD_BIN, "--config", self.config, "--keygen"],
                           check=True, capture_output=True, timeout=30)

    def pick_ports(self):
        names = list(self.graph)
        ports = free_ports(7 * len(names))
        count = len(names)
        self.tls_ports = dict(zip(names, ports[6 * count:]))
        ports = ports[:6 * count]
        self.client_ports = dict(zip(names, ports[:count]))
        self.bus_ports = dict(zip(names, ports[count:2 * count]))
        self.sync_ports = dict(zip(names, ports[2 * count:3 * count]))
        self.admin_ports = dict(zip(names, ports[3 * count:4 * count]))
        self.http_ports = dict(zip(names, ports[4 * count:5 * count]))
        self.feed_ports = dict(zip(names, ports[5 * count:]))

    @property
    def secure(self):
        return str(self.settings.get("herd/security", "on")) == "on"

    def curve_client(self, sock, name, cert="monitor"):
        """Makes sock a CURVE client of server name with cert's keys, as
        herd-monitor does (pyzmq reads CZMQ's certificate files)."""
        if self.secure:
            public, secret = zmq.auth.load_certificate(
                os.path.join(self.keys, "secret", f"{cert}.key_secret"))
            server, _ = zmq.auth.load_certificate(os.path.join(self.keys, "public", f"{name}.key"))
            sock.curve_publickey, sock.curve_secretkey, sock.curve_serverkey = public, secret, server
        return sock

    def write_config(self, text=None):
        if text is None:
            sections = {"herd": {"log_dir": os.path.join(self.folder, "log"),
                                 "data_dir": os.path.join(self.folder, "state"),
                                 "keys": self.keys},
                        "places/offline": {"data": PLACES_DATA}}
            for path, value in self.settings.items():
                section, key = path.rsplit("/", 1)
                sections.setdefault(section, {})[key] = value
            lines = []
            for section in ("herd", "bus", "places", "tls"):
                children = sections.get(section, {})
                subsections = {name: sections.get(f"places/{name}", {})
                               for name in ("google", "offline", "cache")} if section == "places" else {}
                if children or any(subsections.values()):
                    lines.append(section)
                    lines += [f'    {k} = "{v}"' for k, v in children.items()]
                for name, settings in subsections.items():
                    if settings:
                        lines.append(f"    {name}")
                        lines += [f'        {k} = "{v}"' for k, v in settings.items()]
            lines.append("servers")
            for name, neighbours in self.graph.items():
                host = self.hosts[name]
                lines += [f"    {name}",
                          f"        client = {host}:{self.client_ports[name]}" if self.tls != "only"
                          else "        client = off"]
                if self.tls:
                    lines.append(f"        client_tls = {host}:{self.tls_ports[name]}")
                lines += [
                          f"        bus = tcp://{host}:{self.bus_ports[name]}",
                          f"        sync = tcp://{host}:{self.sync_ports[name]}",
                          f"        admin = tcp://{host}:{self.admin_ports[name]}",
                          f"        http = {host}:{self.http_ports[name]}",
                          f"        feed = tcp://{host}:{self.feed_ports[name]}",
                          f'        neighbours = "{" ".join(neighbours)}"']
            text = "\n".join(lines) + "\n"
        with open(self.config, "w") as file:
            file.write(text)

    def log(self, name):
        with open(os.path.join(self.folder, "log", f"{name}.log"), errors="replace") as file:
            return file.read()

    def command(self, name):
        """How to run a server; a subclass may wrap it (network namespaces)."""
        return [HERD_BIN]

    def spawn(self, name, *extra):
        """Starts a server process and returns it, without waiting."""
        return subprocess.Popen(self.command(name) + ["--config", self.config, *extra, name],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env)

    def start(self, *names, wait=True):
        for attempt in range(3):
            for name in names or self.graph:
                self.processes[name] = self.spawn(name)
            if not wait:
                return
            try:
                for name in names or self.graph:
                    self.wait_ready(name)
                break
            except RuntimeError as error:
                #   A port taken between our pick and the bind (another run):
                #   at the first start of the herd, pick them all again
                first_start = not names or set(names) == set(self.graph)
                if "already in use" not in str(error) or not first_start or attempt == 2:
                    raise
                for name in list(self.processes):
                    self.processes.pop(name).kill()
                self.pick_ports()
                self.write_config()
        self.wait_linked(names or self.graph)

    def wait_linked(self, names, timeout=60):
        """Waits until each server hears each running neighbour directly (its
        STATE says so): ZeroMQ's slow joiner drops what a SUB misses while
        it connects, so tests start once every link carries messages."""
        deadline = time.monotonic() + timeout
        for name in names:
            for neighbour in self.graph[name]:
                if neighbour not in self.processes:
                    continue
                while True:
                    link = self.state(neighbour)["links"][name]
                    if link["heard_ms_ago"] is not None and not link["silent"]:
                        break
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{neighbour} never heard from {name} directly")
                    time.sleep(0.05)

    def wait_ready(self, name, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            process = self.processes[name]
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited {process.returncode}: {process.stderr.read().decode()}")
            try:
                port = self.tls_ports[name] if self.tls == "only" else self.client_ports[name]
                socket.create_connection((self.hosts[name], port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"{name} did not start listening")

    def client(self, name):
        return Client(self.client_ports[name], host=self.hosts[name])

    def client_cert(self, client_id, prefix=False, days=None):
        """A client certificate from the herd's CA (herd --client-cert):
        (cert, key) paths under the herd's folder."""
        out = os.path.join(self.folder, "certs")
        command = [HERD_BIN, "--config", self.config, "--out", out,
                   "--client-cert-prefix" if prefix else "--client-cert", client_id]
        if days:
            command += ["--days", str(days)]
        subprocess.run(command, check=True, capture_output=True, timeout=30)
        base = os.path.join(out, client_id or "any")
        return base + ".crt", base + ".key"

    def tls_client(self, name, cert=None, **options):
        """A TLS client of name's TLS port showing cert, a (cert, key)
        pair (None: no certificate)."""
        cert_path, key_path = cert if cert else (None, None)
        return TlsClient(self.tls_ports[name], os.path.join(self.keys, "ca.crt"), cert_path, key_path,
                         host=self.hosts[name], **options)

    def stats(self, name, timeout=10):
        """The server's answer to STATS on its admin endpoint, as a dict."""
        return self.state(name, timeout, request=b"STATS")

    def state(self, name, timeout=10, request=b"STATE"):
        """The server's answer to STATE on its admin endpoint, as a dict."""
        sock = self.curve_client(zmq.Context.instance().socket(zmq.DEALER), name)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVTIMEO, int(timeout * 1000))
        sock.connect(f"tcp://{self.hosts[name]}:{self.admin_ports[name]}")
        try:
            sock.send(request)
            return json.loads(sock.recv())
        finally:
            sock.close()

    def wait_converged(self, names=None, timeout=30):
        """Waits until every server holds the same store (size and digest)."""
        return wait_converged(self.state, list(names or self.processes), timeout)

    def kill(self, name, sig=signal.SIGKILL):
        process = self.processes.pop(name)
        process.send_signal(sig)
        process.wait(timeout=60)
        return process

    def stop(self, name):
        """SIGTERM; the server must exit 0 with nothing reported (leaks under ASan)."""
        process = self.kill(name, signal.SIGTERM)
        stderr = process.stderr.read().decode(errors="replace")
        assert process.returncode == 0, f"{name} exited {process.returncode}: {stderr}"
        assert "Sanitizer" not in stderr and "runtime error" not in stderr, stderr
        return stderr

    def stop_all(self):
        problems = []
        for name in list(self.processes):
            try:
                self.stop(name)
            except (AssertionError, subprocess.TimeoutExpired) as error:
                problems.append(str(error))
        return problems

    def iamat(self, name, client, coordinates, client_time):
        return iamat(self.client(name), client, coordinates, client_time)

    def stored_line(self, name, client):
        """The AT line a server holds for client, or None if it holds none."""
        connection = self.client(name)
        connection.send(f"WHATSAT {client} 1 1\n")
        first = connection.line()
        if first.startswith(b"? "):
            connection.close()
            return None
        connection.until_blank()
        connection.close()
        return first

    def wait_stored(self, name, client, expected, timeout=30):
        deadline = time.monotonic() + timeout
        line = None
        while time.monotonic() < deadline:
            line = self.stored_line(name, client)
            if line == expected:
                return line
            time.sleep(0.05)
        raise AssertionError(f"{name} holds {line!r} for {client}, expected {expected!r}")


class BackgroundIamats:
    """Pipelined IAMATs for distinct clients (prefix0, prefix1, ...) at one
    server, from a thread, until stop(): acknowledged lists the clients
    whose AT came back, in order. A reply that is not an AT fails stop()."""

    def __init__(self, herd, name, prefix, batch=50, limit=100000):
        self.acknowledged, self.problems = [], []
        self.stopping = threading.Event()

        def run():
            try:
                connection = herd.client(name)
                n = 0
                while not self.stopping.is_set() and n < limit:
                    connection.send("".join(f"IAMAT {prefix}{n + k} +1+1 {n + k + 1}\n" for k in range(batch)))
                    for k in range(batch):
                        line = connection.line()
                        assert AT_PATTERN.match(line), line
                        self.acknowledged.append(f"{prefix}{n + k}")
                    n += batch
                connection.close()
            except Exception as error:      # noqa: BLE001 -- reported by stop()
                self.problems.append(error)

        self.thread = threading.Thread(target=run)
        self.thread.start()

    def stop(self):
        self.stopping.set()
        self.thread.join(timeout=60)
        assert not self.problems, self.problems
        return self.acknowledged


def probe(port, seconds, results):
    """IAMATs one at a time on one connection: round trips in ms."""
    with socket.create_connection(("127.0.0.1", port)) as connection:
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = connection.makefile("rb")
        deadline = time.monotonic() + seconds
        n = 0
        while time.monotonic() < deadline:
            n += 1
            started = time.perf_counter()
            connection.sendall(f"IAMAT probe +1+1 {4000 + n}\n".encode())
            assert AT_PATTERN.match(reader.readline())
            results.append((time.perf_counter() - started) * 1000)
            time.sleep(0.002)


def sync_storm(herd, name, seconds, rate=20):
    """SYNC requests at rate a second from several askers that never ask
    for more, as a neighbour gone wrong would. Returns requests sent."""
    context = zmq.Context.instance()
    askers = []
    for _ in range(5):
        asker = herd.curve_client(context.socket(zmq.DEALER), name)
        asker.setsockopt(zmq.LINGER, 0)
        asker.connect(f"tcp://127.0.0.1:{herd.sync_ports[name]}")
        askers.append(asker)
    sent = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        #   The catch-up codec: "SYNC <id>" (bus/herd_sync_msg.h)
        askers[sent % len(askers)].send(f"SYNC {sent + 1}".encode())
        sent += 1
        time.sleep(1 / rate)
    for asker in askers:
        asker.close()
    return sent


@pytest.fixture
def make_herd(tmp_path):
    herds = []

    def make(graph=None, settings=None, start=True, tls=None):
        folder = tmp_path / f"herd{len(herds)}"
        folder.mkdir()
        herd = Herd(str(folder), graph, settings, tls)
        herds.append(herd)
        if start:
            herd.start()
        return herd

    yield make
    problems = []
    for herd in herds:
        problems += herd.stop_all()
    assert not problems, problems


@pytest.fixture
def herd(make_herd):
    """The default five-server herd, running."""
    return make_herd()


@pytest.fixture
def single(make_herd):
    """One server alone, named Bailey, running."""
    return make_herd(graph={"Bailey": []})


class GoogleStandIn:
    """Plays Google's Places API on 127.0.0.1, both the New searchNearby and
    the legacy Nearby Search, and records every request it gets."""

    def __init__(self):
        self.requests = []
        self.mode = "ok"            #   ok | error | badjson | slow | empty | huge
        self.place_count = 20
        self.slow_seconds = 3
        stand_in = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self, legacy, latitude, longitude):
                if stand_in.mode == "slow":
                    time.sleep(stand_in.slow_seconds)
                if stand_in.mode == "error":
                    body = json.dumps({"error": {"code": 500, "message": "stand-in failure",
                                                 "status": "INTERNAL"}}).encode()
                    status = 500
                elif stand_in.mode == "badjson":
                    body, status = b'{"places": [ {"id": ', 200
                elif stand_in.mode == "huge":
                    #   Valid JSON past the server's 4 MiB body cap
                    body, status = b'{"places": [' + b" " * (5 * 1024 * 1024) + b"]}", 200
                else:
                    count = 0 if stand_in.mode == "empty" else stand_in.place_count
                    places = [{"id": f"place{n}", "displayName": {"text": f"Place {n}"},
                               "location": {"latitude": latitude + n * 1e-4,
                                            "longitude": longitude},
                               "types": ["cafe"], "shortFormattedAddress": f"{n} Main St"}
                              for n in range(count)]
                    if legacy:
                        results = [{"name": p["displayName"]["text"], "place_id": p["id"],
                                    "geometry": {"location": {"lat": p["location"]["latitude"],
                                                              "lng": p["location"]["longitude"]}},
                                    "types": p["types"], "vicinity": p["shortFormattedAddress"]}
                                   for p in places]
                        body = {"html_attributions": [], "results": results,
                                "status": "OK" if results else "ZERO_RESULTS"}
                    else:
                        body = {"places": places} if places else {}
                    body, status = json.dumps(body).encode(), 200
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass            #   The server gave up waiting, as it should

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                body = json.loads(raw or b"{}")
                stand_in.requests.append({"method": "POST", "path": self.path,
                                          "headers": dict(self.headers), "body": body, "raw": raw})
                center = body.get("locationRestriction", {}).get("circle", {}).get("center", {})
                self._answer(False, center.get("latitude", 0), center.get("longitude", 0))

            def do_GET(self):
                url = urllib.parse.urlparse(self.path)
                query = urllib.parse.parse_qs(url.query)
                stand_in.requests.append({"method": "GET", "path": url.path,
                                          "headers": dict(self.headers), "query": query})
                latitude, longitude = map(float, query.get("location", ["0,0"])[0].split(","))
                self._answer(True, latitude, longitude)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


GOOGLE_KEY = "test-key-not-a-secret"


def google_herd(make_herd, google, api="new", timeout=5000, settings=None):
    """One server, Bailey, whose places come from the Google stand-in."""
    herd = make_herd(graph={"Bailey": []}, settings={
        "places/provider": "google", "places/timeout": timeout,
        "places/google/api": api, "places/google/url": google.url, **(settings or {})}, start=False)
    herd.env["HERD_GOOGLE_API_KEY"] = GOOGLE_KEY
    herd.start()
    return herd


@pytest.fixture
def google():
    stand_in = GoogleStandIn()
    yield stand_in
    stand_in.close()
