"""Kubernetes manifests, validated offline (no cluster can run here):
the StatefulSet herd that tools/herd-graph writes, for the default five
(k8s/herd.yaml, kept in step) and for N servers, passes the Kubernetes
schemas (kubernetes-validate, strict), carries a config herd accepts
with the generated graph, and hands each pod only its own secret key."""

import os
import subprocess

import kubernetes_validate
import pytest
import yaml

from conftest import HERD_BIN
from test_graph import ROOT, TOOL, herd_graph, servers_of

VERSION = "1.30.0"


def manifests(count, topology="default"):
    text = subprocess.run([TOOL, "--servers", str(count), "--topology", topology, "--layout", "k8s",
                           "--manifests"], check=True, capture_output=True, text=True).stdout
    return text, [document for document in yaml.safe_load_all(text) if document]


def test_the_committed_manifests_are_the_generated_ones():
    with open(os.path.join(ROOT, "k8s", "herd.yaml")) as file:
        assert file.read() == manifests(5)[0]


@pytest.mark.parametrize("count, topology", [(5, "default"), (12, "regular:4"), (50, "chords")])
def test_manifests_validate_and_carry_the_graph(tmp_path, count, topology):
    _, documents = manifests(count, topology)
    kinds = {}
    for document in documents:
        kubernetes_validate.validate(document, VERSION, strict=True)
        kinds[document["kind"], document["metadata"]["name"]] = document
    statefulset = kinds["StatefulSet", "herd"]
    spec = statefulset["spec"]
    assert spec["replicas"] == count and spec["serviceName"] == "herd"
    assert kinds["Service", "herd"]["spec"]["clusterIP"] == "None"      #   Headless: stable names
    pod = spec["template"]["spec"]
    container = pod["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert spec["volumeClaimTemplates"][0]["metadata"]["name"] == "journal"
    assert {"name": "secrets", "secret": {"secretName": "herd-keys"}} in pod["volumes"]
    #   What a platform team asks of it: the restricted Pod Security
    #   Standard, spread over nodes, one server down at a time in a drain,
    #   and an image that is never pulled when it is there (no registry)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for each in pod["containers"] + pod["initContainers"]:
        security = each["securityContext"]
        assert security["allowPrivilegeEscalation"] is False and security["readOnlyRootFilesystem"] is True
        assert security["capabilities"] == {"drop": ["ALL"]}
        assert each["imagePullPolicy"] == "IfNotPresent"
    assert pod["topologySpreadConstraints"][0]["topologyKey"] == "kubernetes.io/hostname"
    budget = kinds["PodDisruptionBudget", "herd"]["spec"]
    assert budget["maxUnavailable"] == 1 and budget["selector"]["matchLabels"] == spec["selector"]["matchLabels"]
    #   The main container never mounts the Secret itself
    assert all(mount["name"] != "secrets" for mount in container["volumeMounts"])
    #   The config herd will read: accepted, and the generator's graph
    config = tmp_path / "herd.cfg"
    config.write_text(kinds["ConfigMap", "herd-config"]["data"]["herd.cfg"])
    listed = subprocess.run([HERD_BIN, "--config", str(config), "--list"], capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == [f"herd-{i}" for i in range(count)]
    graph = servers_of(config.read_text().split("\nservers\n", 1)[1])
    expected = herd_graph.graph(count, topology, indexed=True)
    assert {name: sorted(n) for name, n in graph.items()} == {name: sorted(n) for name, n in expected.items()}
    assert "bus = tcp://herd-0.herd:7100" in config.read_text()


def test_keys_for_hands_a_pod_its_own_secret_only(tmp_path):
    """What the init container runs, on a Secret's flat layout"""
    flat = tmp_path / "secret-volume"
    flat.mkdir()
    for name in ("herd-0", "herd-1", "monitor"):
        (flat / f"{name}.key").write_text(f"public {name}\n")
        (flat / f"{name}.key_secret").write_text(f"secret {name}\n")
        (flat / f"{name}.crt").write_text(f"TLS certificate {name}\n")
        (flat / f"{name}.pem").write_text(f"TLS key {name}\n")
    (flat / "ca.crt").write_text("CA certificate\n")
    (flat / "..data").mkdir()                       #   As a Secret volume has
    keys = tmp_path / "keys"
    result = subprocess.run([HERD_BIN, "--keys-for", "herd-1", str(flat), str(keys)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(keys / "public")) == ["herd-0.key", "herd-1.key", "monitor.key"]
    assert sorted(os.listdir(keys / "secret")) == ["herd-1.key_secret", "herd-1.pem"]
    assert oct(os.stat(keys / "secret" / "herd-1.key_secret").st_mode & 0o777) == "0o600"
    assert oct(os.stat(keys / "secret" / "herd-1.pem").st_mode & 0o777) == "0o600"
    #   The TLS port's: the CA's certificate and its own, no other's
    assert sorted(name for name in os.listdir(keys) if name.endswith(".crt")) == ["ca.crt", "herd-1.crt"]
    assert "client-tls" in {port["name"] for port in manifests(5)[1][3]["spec"]["template"]["spec"]
                            ["containers"][0]["ports"]}
    assert oct(os.stat(keys / "secret").st_mode & 0o777) == "0o700"
    missing = subprocess.run([HERD_BIN, "--keys-for", "herd-9", str(flat), str(tmp_path / "none")],
                             capture_output=True, text=True)
    assert missing.returncode == 1 and "no herd-9.key_secret" in missing.stderr
