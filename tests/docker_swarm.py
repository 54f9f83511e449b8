"""The herd on Docker Swarm (make test-docker): docker/stack.yaml deployed
with `docker stack deploy` on a single-node swarm (initialised here if the
engine is in none, and left again only then). Keys go in as Docker
secrets, ports are published in host mode; an IAMAT at one server is seen
by WHATSAT at another, a rolling restart of one service catches up with
what it missed, and everything this test created is removed after."""

import os
import subprocess
import tempfile
import time
import urllib.request

import pytest

from conftest import AT_PATTERN, Client, TlsClient

HERE = os.path.dirname(os.path.abspath(__file__))
STACK_FILE = os.path.join(HERE, "..", "docker", "stack.yaml")
STACK = f"herdswarm{os.getpid()}"
SERVERS = {"bailey": 1, "bona": 2, "campbell": 3, "clark": 4, "jaquez": 5}


def docker(*args, check=True, env=None):
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=180, check=check,
                          env=env)


def wait_ready(service, timeout=90):
    """Until the service's task runs and its /readyz says so"""
    deadline = time.monotonic() + timeout
    url = f"http://127.0.0.1:{13400 + SERVERS[service]}/readyz"
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            tasks = docker("service", "ps", "--no-trunc", f"{STACK}_{service}", check=False)
            raise TimeoutError(f"{service} never ready: {tasks.stdout}{tasks.stderr}")
        time.sleep(0.5)


def whatsat_line(service, client_id):
    connection = Client(13000 + SERVERS[service])
    try:
        connection.send(f"WHATSAT {client_id} 10 1\n")
        first = connection.line()
        if not first.startswith(b"? "):
            connection.until_blank()
        return first
    finally:
        connection.close()


@pytest.fixture(scope="module")
def swarm():
    state = docker("info", "--format", "{{.Swarm.LocalNodeState}}").stdout.strip()
    initialised = state == "inactive"
    #   swarm init makes this bridge; it goes again with us if it was not there
    bridge_before = bool(docker("network", "ls", "-q", "--filter", "name=^docker_gwbridge$").stdout.strip())
    if initialised:
        docker("swarm", "init", "--advertise-addr", "127.0.0.1")
    node = docker("info", "--format", "{{.Swarm.NodeID}}").stdout.strip()
    labels = [f"herd.{service}=true" for service in SERVERS]
    keys = tempfile.mkdtemp(prefix="herd-swarm-keys-")
    try:
        #   The herd's keys, made by the image itself, once
        docker("run", "--rm", "--user", "0", "-v", f"{keys}:/var/lib/herd-keys", "herd:latest", "--keygen")
        for label in labels:
            docker("node", "update", "--label-add", label, node)
        env = dict(os.environ, HERD_KEYS=keys)
        docker("stack", "deploy", "-c", STACK_FILE, STACK, env=env)
        for service in SERVERS:
            wait_ready(service)
        yield keys
    finally:
        docker("stack", "rm", STACK, check=False)
        #   The stack's network and volumes go once its tasks are gone
        deadline = time.monotonic() + 60
        while docker("ps", "-aq", "--filter", f"label=com.docker.stack.namespace={STACK}").stdout.strip() \
                and time.monotonic() < deadline:
            time.sleep(1)
        for service in SERVERS:
            docker("volume", "rm", f"{STACK}_{service}-data", check=False)
        while docker("network", "ls", "-q", "--filter", f"name={STACK}_herd").stdout.strip() \
                and time.monotonic() < deadline:
            time.sleep(1)
        for label in labels:
            docker("node", "update", "--label-rm", label.split("=")[0], node, check=False)
        subprocess.run(["rm", "-rf", keys])
        if initialised:
            docker("swarm", "leave", "--force", check=False)
            if not bridge_before:
                docker("network", "rm", "docker_gwbridge", check=False)
    assert docker("ps", "-aq", "--filter", f"label=com.docker.stack.namespace={STACK}").stdout.strip() == ""
    assert docker("volume", "ls", "-q", "--filter", f"name={STACK}_").stdout.strip() == ""


def test_stack_serves_converges_and_rolls_one_server(swarm):
    #   IAMAT at Bailey, WHATSAT two hops away at Clark
    connection = Client(13001)
    connection.send(b"IAMAT swarm.kiwi +34.068930-118.445127 1700000000\n")
    line = connection.line()
    connection.close()
    assert AT_PATTERN.match(line)
    deadline = time.monotonic() + 20
    while whatsat_line("clark", "swarm.kiwi") != line:
        assert time.monotonic() < deadline, "Clark never heard of swarm.kiwi"
        time.sleep(0.3)

    #   A rolling restart of Jaquez (update_config: one at a time) while
    #   updates flow: when it is back it has caught up with what it missed
    restart = subprocess.Popen(["docker", "service", "update", "--force", "--quiet", f"{STACK}_jaquez"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = {}
    for n in range(50):
        connection = Client(13001)
        connection.send(f"IAMAT swarm{n} +1+1 {1700000100 + n}\n")
        lines[f"swarm{n}"] = connection.line()
        connection.close()
        time.sleep(0.05)
    _, error = restart.communicate(timeout=180)
    assert restart.returncode == 0, error
    wait_ready("jaquez")
    deadline = time.monotonic() + 30
    for client_id, expected in lines.items():
        while whatsat_line("jaquez", client_id) != expected:
            assert time.monotonic() < deadline, f"Jaquez lacks {client_id} after its restart"
            time.sleep(0.3)
    with urllib.request.urlopen("http://127.0.0.1:13405/metrics", timeout=5) as response:
        assert 'herd_caught_up{server="Jaquez"} 1' in response.read().decode()


def test_stack_serves_clients_over_tls(swarm):
    """The TLS port (1360N), with a client certificate from the herd's CA
    that --keygen made: alice moves alice, not bob"""
    docker("run", "--rm", "--user", "0", "-v", f"{swarm}:/var/lib/herd-keys", "herd:latest",
           "--client-cert", "alice", "--out", "/var/lib/herd-keys/clients")
    folder = os.path.join(swarm, "clients")
    connection = TlsClient(13602, os.path.join(folder, "ca.crt"), os.path.join(folder, "alice.crt"),
                           os.path.join(folder, "alice.key"))
    connection.send(b"IAMAT alice +1+1 1700000000\nIAMAT bob +1+1 1700000000\n")
    assert AT_PATTERN.match(connection.line()).group(1) == b"Bona"
    assert connection.line() == b"? IAMAT bob +1+1 1700000000"
