"""The docker-compose five-node cluster (make test-docker): built image,
real containers on a compose network, clients over the published TLS
ports (the compose herd is TLS-only: its plain client ports are off).
Named docker_cluster.py so `make test` (no Docker needed) leaves it out;
`make test-docker` runs it. Cleans up by project name even on failure."""

import json
import os
import socket
import subprocess
import time
import urllib.request

import pytest
import zmq

import conftest
from conftest import AT_PATTERN, TlsClient

HERE = os.path.dirname(os.path.abspath(__file__))
COMPOSE = os.path.join(HERE, "..", "docker", "compose.yaml")
PROJECT = f"herdtest{os.getpid()}"
CERTS = f"/tmp/herdtest{os.getpid()}-certs"
SERVERS = {"bailey": ("Bailey", 1), "bona": ("Bona", 2), "campbell": ("Campbell", 3),
           "clark": ("Clark", 4), "jaquez": ("Jaquez", 5)}


def compose(*args, check=True):
    return subprocess.run(["docker-compose", "-p", PROJECT, "-f", COMPOSE, *args],
                          capture_output=True, text=True, timeout=180, check=check)


def docker(*args, check=True):
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120, check=check)


def container(service):
    return f"{PROJECT}_{service}_1"


def client(service):
    """A TLS client with a certificate that grants every id (a prefix of
    nothing), made by the cluster's own CA"""
    return TlsClient(12600 + SERVERS[service][1], f"{CERTS}/ca.crt", f"{CERTS}/any.crt", f"{CERTS}/any.key")


def state(service):
    name = SERVERS[service][0]
    result = docker("exec", container(service), "/usr/bin/herd", "--config", "/etc/herd/herd.cfg",
                    "--state", name)
    return json.loads(result.stdout)


def wait_healthy(services, timeout=60):
    deadline = time.monotonic() + timeout
    for service in services:
        while True:
            health = docker("inspect", "--format", "{{.State.Health.Status}}", container(service),
                            check=False).stdout.strip()
            if health == "healthy":
                break
            assert time.monotonic() < deadline, f"{service} is {health}"
            time.sleep(0.5)


def wait_converged(timeout=30):
    return conftest.wait_converged(state, SERVERS, timeout, pause=0.5)


def iamat(service, client_id, coordinates, client_time):
    return conftest.iamat(client(service), client_id, coordinates, client_time)


def leftovers():
    label = f"label=com.docker.compose.project={PROJECT}"
    return (docker("ps", "-aq", "--filter", label).stdout.split()
            + docker("network", "ls", "-q", "--filter", label).stdout.split()
            + docker("volume", "ls", "-q", "--filter", label).stdout.split())


@pytest.fixture(scope="module")
def cluster():
    try:
        compose("up", "-d")
        wait_healthy(SERVERS)
        #   A client certificate from the CA in the cluster's keys volume,
        #   as docker/compose.yaml says to make one
        os.makedirs(CERTS, exist_ok=True)
        compose("run", "--rm", "--user", "0", "-v", f"{CERTS}:/certs", "keys",
                "--client-cert-prefix", "", "--out", "/certs")
        #   Every link carries heartbeats before tests start (slow joiner)
        deadline = time.monotonic() + 30
        for service in SERVERS:
            while any(link["heard_ms_ago"] is None for link in state(service)["links"].values()):
                assert time.monotonic() < deadline
                time.sleep(0.5)
        yield
    finally:
        compose("down", "-v", "--remove-orphans", check=False)
        subprocess.run(["rm", "-rf", CERTS], check=False)
    assert leftovers() == []


def test_iamat_at_one_whatsat_two_hops_away_monitor_on_a_third(cluster):
    #   The monitor runs beside Campbell with the cluster's monitor key
    #   (the keys live in the cluster's volume, not on this host)
    monitor = subprocess.Popen(["docker", "exec", container("campbell"), "/usr/bin/herd-monitor",
                                "--config", "/etc/herd/herd.cfg", "--count", "1", "--timeout", "30",
                                "--client", "dock", "Campbell"], stdout=subprocess.PIPE, text=True)
    #   An outsider on the published bus and feed ports, with no key, hears nothing
    outsiders = []
    for port in (12103, 12503):
        outsider = zmq.Context.instance().socket(zmq.SUB)
        outsider.setsockopt(zmq.SUBSCRIBE, b"")
        outsider.setsockopt(zmq.LINGER, 0)
        outsider.connect(f"tcp://127.0.0.1:{port}")
        outsiders.append(outsider)
    line = None
    deadline = time.monotonic() + 30
    n = 0
    while monitor.poll() is None and time.monotonic() < deadline:
        n += 1
        line = iamat("bailey", "dock.kiwi", "+34.068930-118.445127", f"{1700000000 + n}")
        time.sleep(0.1)
    out, _ = monitor.communicate(timeout=10)
    assert monitor.returncode == 0
    assert out.startswith("Campbell ") and "AT Bailey " in out
    for outsider in outsiders:
        assert outsider.poll(1000) == 0
        outsider.close()
    assert AT_PATTERN.match(line)
    deadline = time.monotonic() + 10
    while True:
        connection = client("clark")
        at_line, places = connection.whatsat("dock.kiwi", 50, 5)
        connection.close()
        if at_line == line or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert at_line == line
    assert places["status"] == "OK" and len(places["results"]) == 5


def test_metrics_scraped_on_the_published_http_port(cluster):
    from prometheus_client.parser import text_string_to_metric_families
    iamat("bona", "scraped", "+1+1", "1700000000")
    with urllib.request.urlopen("http://127.0.0.1:12402/metrics", timeout=10) as response:
        families = {family.name: family for family in text_string_to_metric_families(response.read().decode())}
    stored = families["herd_clients_stored"].samples[0]
    assert stored.labels == {"server": "Bona"} and stored.value >= 1
    links = {sample.labels["neighbour"]: sample.value for sample in families["herd_link_up"].samples}
    assert links == {"Clark": 1, "Campbell": 1, "Bailey": 1}
    with urllib.request.urlopen("http://127.0.0.1:12402/readyz", timeout=10) as response:
        assert response.status == 200


def test_stopped_container_catches_up_when_started(cluster):
    compose("stop", "jaquez")
    for n in range(100):
        iamat("bailey", f"away{n}", "+1+1", f"{1700000000 + n}")
    compose("start", "jaquez")
    wait_healthy(["jaquez"])
    states = wait_converged()
    assert states["jaquez"]["clients"] >= 100
    assert "sync: caught up with" in docker("logs", container("jaquez")).stderr


def test_disconnected_container_converges_after_reconnect(cluster):
    network = f"{PROJECT}_herd"
    docker("network", "disconnect", network, container("clark"))
    try:
        for n in range(100):
            iamat("bailey", f"cut{n}", "+2+2", f"{1700000000 + n}")
        time.sleep(1)
        assert state("clark")["clients"] < state("bailey")["clients"]
    finally:
        docker("network", "connect", "--alias", "clark", network, container("clark"))
    states = wait_converged(timeout=60)
    assert states["clark"]["clients"] >= 200


def test_the_compose_herd_serves_clients_over_tls_only(cluster):
    """No plain client port is published or open; a certificate for alice
    moves alice and nobody else"""
    for port in (12001, 12002):
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=5)
    result = docker("exec", container("bona"), "/usr/bin/herd", "--config", "/etc/herd/herd-tls-only.cfg",
                    "--stats", "Bona")
    assert json.loads(result.stdout)["tls"]["handshakes"] > 0
    compose("run", "--rm", "--user", "0", "-v", f"{CERTS}:/certs", "keys", "--client-cert", "alice",
            "--out", "/certs")
    alice = TlsClient(12602, f"{CERTS}/ca.crt", f"{CERTS}/alice.crt", f"{CERTS}/alice.key")
    alice.send(b"IAMAT alice +1+1 1700000000\nWHATSAT bob 1 1\n")
    assert AT_PATTERN.match(alice.line()).group(1) == b"Bona"
    assert alice.line() == b"? WHATSAT bob 1 1"
