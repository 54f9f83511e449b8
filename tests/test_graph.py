"""tools/herd-graph: configs for herds of any size. Every topology gives a
symmetric, connected graph that herd itself accepts; the default five
reproduce the shipped configs; a generated herd runs and converges."""

import importlib.machinery
import importlib.util
import os
import re
import subprocess

import pytest

from conftest import HERD_BIN

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
TOOL = os.path.join(ROOT, "tools", "herd-graph")


def load_tool():
    loader = importlib.machinery.SourceFileLoader("herd_graph", TOOL)
    spec = importlib.util.spec_from_loader("herd_graph", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


herd_graph = load_tool()


def servers_of(text):
    """{name: [neighbours]} as the servers section says"""
    servers, name = {}, None
    for line in text.splitlines():
        match = re.match(r"^    (\S+)$", line)
        if match:
            name = match.group(1)
            servers[name] = []
        neighbours = re.match(r'^        neighbours = "(.*)"$', line)
        if neighbours:
            servers[name] = neighbours.group(1).split()
    return servers


def hops(graph):
    """The diameter: most hops between two servers (BFS from each)."""
    worst = 0
    for start in graph:
        seen, frontier, depth = {start}, [start], 0
        while frontier:
            following = [n for server in frontier for n in graph[server] if n not in seen]
            seen.update(following)
            frontier, depth = following, depth + (1 if following else 0)
        assert len(seen) == len(graph), f"{start} does not reach every server"
        worst = max(worst, depth)
    return worst


@pytest.mark.parametrize("count", [5, 12, 50])
@pytest.mark.parametrize("topology", ["ring", "chords", "regular:4", "tree"])
def test_every_topology_is_symmetric_connected_and_accepted(tmp_path, topology, count):
    path = tmp_path / "herd.cfg"
    subprocess.run([TOOL, "--servers", str(count), "--topology", topology, "--output", str(path)], check=True)
    text = path.read_text()
    graph = servers_of(text.split("\nservers\n", 1)[1])
    assert len(graph) == count
    for name, neighbours in graph.items():
        assert len(set(neighbours)) == len(neighbours) and name not in neighbours
        assert all(name in graph[other] for other in neighbours)          #   Both ways
    degrees = {len(neighbours) for neighbours in graph.values()}
    if topology == "ring":
        assert degrees == {2}
    if topology == "regular:4":
        assert degrees == {4}
    if topology == "tree":
        assert max(degrees) <= 3 and sum(len(n) for n in graph.values()) == 2 * (count - 1)
    diameter = hops(graph)
    if topology == "chords" and count == 50:
        assert diameter < hops(herd_graph.graph(50, "ring"))              #   Chords shorten paths
    #   herd itself loads it: keys known, ports valid, graph symmetric
    listed = subprocess.run([HERD_BIN, "--config", str(path), "--list"], capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == list(graph)


def test_the_default_five_are_the_shipped_configs():
    for layout, shipped in (("local", "herd.cfg"), ("compose", "docker/herd.cfg")):
        generated = subprocess.run([TOOL, "--servers", "5", "--layout", layout], check=True,
                                   capture_output=True, text=True).stdout
        with open(os.path.join(ROOT, shipped)) as file:
            text = file.read()
        strip = lambda config: [line for line in config.splitlines() if not line.startswith("#   Generated")]
        assert strip(generated) == strip(text), layout


def test_impossible_graphs_are_one_line_errors():
    result = subprocess.run([TOOL, "--servers", "7", "--topology", "regular:3"], capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr == "herd-graph: no 3-regular graph on 7 servers (need 2 <= K < N, K*N even)\n"
    result = subprocess.run([TOOL, "--servers", "6", "--topology", "star"], capture_output=True, text=True)
    assert result.returncode == 1 and "unknown topology" in result.stderr


def test_a_generated_herd_of_eight_runs_and_converges(make_herd):
    herd = make_herd(graph=herd_graph.graph(8, "chords"), settings={"herd/log_traffic": 0})
    herd.iamat("herd-0", "eight", "+1+1", "1700000000")
    states = herd.wait_converged(timeout=20)
    assert all(state["clients"] == 1 for state in states.values())
