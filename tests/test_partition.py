"""A true partition: each server in its own network namespace, linked by
veth pairs to a bridge in a namespace of the test's own (the hub); iptables
DROP rules inside the servers' namespaces cut the herd in two (packets
vanish, nothing is refused), then the rules go and the herd must
converge. The host gets one veth into the hub, on a subnet made from the
test's pid, so two runs at once cannot clash, and no host bridge or
iptables rule is touched. Needs root, as CI has."""

import os
import subprocess
import time

import pytest

from conftest import HERD_BIN, Herd


def run(*command):
    """Runs a setup command; a failure shows the command's own error."""
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(command)}: exit status {result.returncode}: "
                             f"{(result.stderr or result.stdout).strip()}")


class NamespacedHerd(Herd):
    """A herd whose servers each run in a network namespace of their own."""

    def __init__(self, folder, tag):
        self.tag = tag
        #   10.X.Y.0/24 from the tag: another run's subnet is another one
        self.subnet = f"10.{200 + tag // 250 % 50}.{tag % 250}"
        super().__init__(folder)
        self.namespaces = {}
        for number, name in enumerate(self.graph, start=1):
            self.hosts[name] = f"{self.subnet}.{number}"
            self.namespaces[name] = f"herd{tag}n{number}"
        self.hub = f"herd{tag}hub"
        self.write_config()

    def command(self, name):
        return ["ip", "netns", "exec", self.namespaces[name], HERD_BIN]

    def build_network(self):
        hub, bridge = self.hub, f"herd{self.tag}br"
        run("ip", "netns", "add", hub)
        run("ip", "netns", "exec", hub, "ip", "link", "add", bridge, "type", "bridge")
        run("ip", "netns", "exec", hub, "ip", "link", "set", bridge, "up")
        #   The host's way in: one veth, its end in the hub on the bridge
        host, host_peer = f"herd{self.tag}h", f"herd{self.tag}hp"
        run("ip", "link", "add", host, "type", "veth", "peer", "name", host_peer)
        run("ip", "link", "set", host_peer, "netns", hub)
        run("ip", "netns", "exec", hub, "ip", "link", "set", host_peer, "master", bridge)
        run("ip", "netns", "exec", hub, "ip", "link", "set", host_peer, "up")
        run("ip", "addr", "add", f"{self.subnet}.254/24", "dev", host)
        run("ip", "link", "set", host, "up")
        for number, name in enumerate(self.graph, start=1):
            namespace = self.namespaces[name]
            inside, outside = f"herd{self.tag}i{number}", f"herd{self.tag}o{number}"
            run("ip", "netns", "add", namespace)
            run("ip", "link", "add", inside, "type", "veth", "peer", "name", outside)
            run("ip", "link", "set", inside, "netns", namespace)
            run("ip", "link", "set", outside, "netns", hub)
            run("ip", "netns", "exec", hub, "ip", "link", "set", outside, "master", bridge)
            run("ip", "netns", "exec", hub, "ip", "link", "set", outside, "up")
            run("ip", "netns", "exec", namespace, "ip", "addr", "add",
                f"{self.hosts[name]}/24", "dev", inside)
            run("ip", "netns", "exec", namespace, "ip", "link", "set", inside, "up")
            run("ip", "netns", "exec", namespace, "ip", "link", "set", "lo", "up")

    def remove_network(self):
        #   Deleting a namespace deletes the veths in it, and their peers
        for namespace in [*self.namespaces.values(), self.hub]:
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True)
        subprocess.run(["ip", "link", "del", f"herd{self.tag}h"], capture_output=True)

    def partition(self, side_a, side_b):
        for ours, theirs in ((side_a, side_b), (side_b, side_a)):
            for name in ours:
                for other in theirs:
                    namespace = self.namespaces[name]
                    run("ip", "netns", "exec", namespace, "iptables", "-A", "INPUT",
                        "-s", self.hosts[other], "-j", "DROP")
                    run("ip", "netns", "exec", namespace, "iptables", "-A", "OUTPUT",
                        "-d", self.hosts[other], "-j", "DROP")

    def heal(self):
        for namespace in self.namespaces.values():
            run("ip", "netns", "exec", namespace, "iptables", "-F")


@pytest.fixture
def namespaced(tmp_path):
    if os.geteuid() != 0:
        pytest.fail("the partition test needs root for network namespaces (CI runs as root)")
    herd = NamespacedHerd(str(tmp_path), tag=os.getpid() % 10000)
    try:
        herd.build_network()
        herd.start()
        yield herd
        problems = herd.stop_all()
        assert not problems, problems
    finally:
        for name in list(herd.processes):
            herd.kill(name)
        herd.remove_network()


def test_partition_then_heal_converges_on_the_newest_update(namespaced):
    herd = namespaced
    side_a, side_b = ["Bailey", "Bona", "Campbell"], ["Clark", "Jaquez"]
    herd.partition(side_a, side_b)
    #   Updates on both sides while cut off
    now = time.time()
    for n in range(50):
        herd.iamat("Bailey", f"west{n}", "+1+1", f"{now + n:.6f}")
        herd.iamat("Jaquez", f"east{n}", "+2+2", f"{now + n:.6f}")
    older = herd.iamat("Campbell", "contested", "+3+3", f"{now:.6f}")
    newer = herd.iamat("Clark", "contested", "+4+4", f"{now + 1:.6f}")
    older2 = herd.iamat("Jaquez", "contested2", "+5+5", f"{now:.6f}")
    newer2 = herd.iamat("Bona", "contested2", "+6+6", f"{now + 1:.6f}")
    #   It is a real partition: each side converges on its own, apart
    herd.wait_converged(side_a, timeout=10)
    herd.wait_converged(side_b, timeout=10)
    time.sleep(2)
    assert herd.stored_line("Clark", "west0") is None
    assert herd.stored_line("Bailey", "east0") is None
    assert herd.stored_line("Bona", "contested") == older
    assert herd.state("Bailey")["digest"] != herd.state("Clark")["digest"]
    #   Both sides keep answering clients throughout
    assert herd.iamat("Bailey", "alive", "+0+0", f"{now:.6f}").startswith(b"AT Bailey")
    herd.heal()
    states = herd.wait_converged(timeout=30)
    assert states["Bailey"]["clients"] == 103       #   50 + 50 + 2 contested + alive
    for name in herd.graph:
        assert herd.stored_line(name, "contested") == newer
        assert herd.stored_line(name, "contested2") == newer2
        assert herd.stored_line(name, "east49") is not None
        assert herd.stored_line(name, "west49") is not None
    assert older != newer and older2 != newer2
