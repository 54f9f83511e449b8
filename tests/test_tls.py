"""The TLS client port (docs/PROTOCOL.md section 4, docs/security.md):
certificates that grant client ids, the certificates that never complete a
handshake, revocation with SIGHUP, stalled handshakes, a herd that is
TLS-only. The protocol itself over TLS is test_protocol.py's second run."""

import datetime
import json
import os
import resource
import signal
import socket
import ssl
import subprocess
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import AT_PATTERN, HERD_BIN, TlsClient, refused_over_tls


def make_certificate(folder, name, grant, issuer_cert=None, issuer_key=None, days=(-1, 30)):
    """A client certificate made outside herd (an operator's own tools):
    grant as a subjectAltName URI, valid from days[0] to days[1] from now,
    signed by issuer (or by itself). (cert, key) paths."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    builder = (x509.CertificateBuilder()
               .subject_name(subject)
               .issuer_name(issuer_cert.subject if issuer_cert else subject)
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now + datetime.timedelta(days=days[0]))
               .not_valid_after(now + datetime.timedelta(days=days[1]))
               .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(grant)]),
                              critical=False))
    if not issuer_cert:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    cert = builder.sign(issuer_key or key, hashes.SHA256())
    cert_path, key_path = os.path.join(folder, f"{name}.crt"), os.path.join(folder, f"{name}.key")
    with open(cert_path, "wb") as file:
        file.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as file:
        file.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()))
    os.chmod(key_path, 0o600)
    return cert_path, key_path, cert, key


def herd_ca(herd):
    """The herd's CA certificate and key, as herd --keygen made them."""
    with open(os.path.join(herd.keys, "ca.crt"), "rb") as file:
        cert = x509.load_pem_x509_certificate(file.read())
    with open(os.path.join(herd.keys, "secret", "ca.pem"), "rb") as file:
        key = serialization.load_pem_private_key(file.read(), None)
    return cert, key


@pytest.fixture
def tls_single(make_herd):
    return make_herd(graph={"Bailey": []}, tls="on")


def test_a_certificate_grants_its_ids_and_no_others(tls_single):
    herd = tls_single
    herd.iamat("Bailey", "bob", "+10+10", "1000")        # bob, from the plain port
    alice = herd.tls_client("Bailey", herd.client_cert("alice"))
    alice.send(b"IAMAT alice +34.068930-118.445127 1621464827.959498503\n")
    at_line = alice.line()
    assert AT_PATTERN.match(at_line).group(3) == b"alice"
    #   Neither move nor read another: "?", and the connection stays open
    for line in (b"IAMAT bob +1+1 2000", b"WHATSAT bob 10 1", b"IAMAT alice2 +1+1 1", b"WHATSAT ali 1 1"):
        alice.send(line + b"\n")
        assert alice.line() == b"? " + line
    alice.send(b"WHATSAT alice 10 1\n")
    assert alice.until_blank().split(b"\n", 1)[0] == at_line
    assert herd.stored_line("Bailey", "bob").split()[3:] == [b"bob", b"+10+10", b"1000"]
    #   A gateway's prefix: fleet-7 yes, fleetx no
    fleet = herd.tls_client("Bailey", herd.client_cert("fleet-", prefix=True))
    fleet.send(b"IAMAT fleet-7 +1+1 1\nIAMAT fleetx +1+1 1\nIAMAT fleet- +1+1 1\n")
    assert AT_PATTERN.match(fleet.line()).group(3) == b"fleet-7"
    assert fleet.line() == b"? IAMAT fleetx +1+1 1"
    assert AT_PATTERN.match(fleet.line()).group(3) == b"fleet-"
    #   Counted, and logged once per connection, not per line
    stats = herd.stats("Bailey")
    assert stats["not_granted"] == 5
    assert stats["tls"]["handshakes"] >= 2
    log = herd.log("Bailey")
    assert log.count("which its certificate does not grant") == 2, log
    assert "a certificate granting alice" in log and "a certificate granting fleet-*" in log


def test_certificates_that_never_complete_a_handshake(tls_single, tmp_path):
    herd = tls_single
    ca_cert, ca_key = herd_ca(herd)
    other_ca = make_certificate(tmp_path, "other CA", "herd:id:nobody")[2:]
    good = herd.client_cert("alice")
    assert not refused_over_tls(lambda: herd.tls_client("Bailey", good))
    cases = {
        "no certificate": None,
        "expired": make_certificate(tmp_path, "expired", "herd:id:alice", ca_cert, ca_key, (-30, -1))[:2],
        "not yet valid": make_certificate(tmp_path, "early", "herd:id:alice", ca_cert, ca_key, (1, 30))[:2],
        "another CA": make_certificate(tmp_path, "stranger", "herd:id:alice", *other_ca)[:2],
        "self-signed": make_certificate(tmp_path, "self", "herd:id:alice")[:2],
    }
    for case, cert in cases.items():
        assert refused_over_tls(lambda: herd.tls_client("Bailey", cert)), case
    #   Plain text on the TLS port: closed, nothing answered
    plain = socket.create_connection(("127.0.0.1", herd.tls_ports["Bailey"]), timeout=10)
    plain.sendall(b"IAMAT alice +1+1 1\n")
    answer = b""
    try:
        while chunk := plain.recv(4096):
            answer += chunk
    except ConnectionResetError:
        pass                        #   Closed with our bytes unread: a reset
    assert b"AT " not in answer and b"? " not in answer
    #   Each one counted and said why in the log
    stats = herd.stats("Bailey")
    assert stats["tls"]["handshakes_failed"] == 6, stats["tls"]
    log = herd.log("Bailey")
    for reason in ("peer did not return a certificate", "client certificate: certificate has expired",
                   "client certificate: certificate is not yet valid",
                   "client certificate: unable to get local issuer certificate",
                   "client certificate: self-signed certificate", "wrong version number"):
        assert f"TLS handshake failed: {reason}" in log, reason
    #   Alice still gets in
    assert not refused_over_tls(lambda: herd.tls_client("Bailey", good))


def test_revocation_takes_effect_at_sighup_and_a_bad_reload_keeps_the_old(tls_single):
    herd = tls_single
    alice, bob = herd.client_cert("alice"), herd.client_cert("bob")
    open_before = herd.tls_client("Bailey", alice)
    subprocess.run([HERD_BIN, "--config", herd.config, "--revoke", alice[0]], check=True,
                   capture_output=True, timeout=30)
    #   Not read yet: the list is read at start and at SIGHUP
    assert not refused_over_tls(lambda: herd.tls_client("Bailey", alice))
    herd.processes["Bailey"].send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 30
    while not refused_over_tls(lambda: herd.tls_client("Bailey", alice)):
        assert time.monotonic() < deadline, "a revoked certificate still gets in after SIGHUP"
        time.sleep(0.1)
    assert not refused_over_tls(lambda: herd.tls_client("Bailey", bob))
    #   A connection opened before keeps its session
    open_before.send(b"IAMAT alice +1+1 5\n")
    assert AT_PATTERN.match(open_before.line())
    #   A reload that cannot read its files keeps what it had, and says so
    key = os.path.join(herd.keys, "secret", "Bailey.pem")
    os.chmod(key, 0o644)
    herd.processes["Bailey"].send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 30
    while "the TLS port keeps its certificates" not in herd.log("Bailey"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    os.chmod(key, 0o600)
    assert not refused_over_tls(lambda: herd.tls_client("Bailey", bob))
    assert refused_over_tls(lambda: herd.tls_client("Bailey", alice))


def test_a_cut_tls_stream_drops_its_unfinished_line(tls_single):
    """An end without close_notify may be an attacker's cut: the last line
    without \\n is not taken (a clean end takes it: test_protocol)."""
    herd = tls_single
    cert = herd.client_cert("alice")
    client = herd.tls_client("Bailey", cert)
    client.send(b"IAMAT alice +1+1 100\nIAMAT alice +2+2 1000")
    client.sock.shutdown(socket.SHUT_WR)        # no close_notify
    assert AT_PATTERN.match(client.line()).group(5) == b"100"
    assert client.closed()
    assert herd.stored_line("Bailey", "alice").split()[4:] == [b"+1+1", b"100"]


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as file:
        return next(int(line.split()[1]) for line in file if line.startswith("VmRSS:"))


def test_stalled_handshakes_cost_a_bound_and_stall_no_one(make_herd):
    """2,000 connections from 20 addresses that stall their handshakes
    (half a ClientHello, or nothing): a fresh TLS client and a plain one
    are served at once, and the server's memory stays bounded."""
    herd = make_herd(graph={"Bailey": []}, tls="on", settings={"herd/first_line_timeout": 60})
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert soft >= 4096, "the test needs 2,000 descriptors"
    cert = herd.client_cert("alice")
    pid = herd.processes["Bailey"].pid
    before = rss_kib(pid)
    stalled = []
    try:
        for n in range(2000):
            sock = socket.socket()
            sock.bind((f"127.0.0.{2 + n % 20}", 0))
            sock.connect(("127.0.0.1", herd.tls_ports["Bailey"]))
            if n % 2 == 0:
                #   A handshake record that promises 512 bytes and sends 20
                sock.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(16))
            stalled.append(sock)
        deadline = time.monotonic() + 60
        while herd.stats("Bailey")["connections_open"] < 2000:
            assert time.monotonic() < deadline, herd.stats("Bailey")["connections_open"]
            time.sleep(0.1)
        started = time.monotonic()
        client = herd.tls_client("Bailey", cert)
        client.send(b"IAMAT alice +1+1 1\n")
        assert AT_PATTERN.match(client.line())
        tls_ms = (time.monotonic() - started) * 1000
        started = time.monotonic()
        plain = herd.client("Bailey")
        plain.send(b"IAMAT plain +1+1 1\n")
        assert AT_PATTERN.match(plain.line())
        plain_ms = (time.monotonic() - started) * 1000
        grown = rss_kib(pid) - before
        print(f"\n2,000 stalled handshakes: a TLS client served in {tls_ms:.1f} ms, a plain one in "
              f"{plain_ms:.1f} ms; the server grew {grown / 1024:.1f} MiB ({grown / 2000:.1f} KiB each)")
        #   Generous bounds for a loaded machine; the figures are above
        assert tls_ms < 2000 and plain_ms < 2000
        assert grown < 200 * 1024, f"{grown} KiB for 2,000 stalled handshakes"
    finally:
        for sock in stalled:
            sock.close()


def test_a_tls_only_herd_serves_and_floods_over_tls(make_herd):
    herd = make_herd(tls="only")
    #   No plain port
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", herd.client_ports["Bailey"]), timeout=5)
    cert = herd.client_cert("kiwi")
    bailey = herd.tls_client("Bailey", cert)
    bailey.send(b"IAMAT kiwi +34.068930-118.445127 1621464827.959498503\n")
    at_line = bailey.line()
    assert AT_PATTERN.match(at_line)
    deadline = time.monotonic() + 30
    while True:
        jaquez = herd.tls_client("Jaquez", cert)
        jaquez.send(b"WHATSAT kiwi 10 1\n")
        first = jaquez.line()
        if first == at_line:
            break
        assert first.startswith(b"? ") and time.monotonic() < deadline, first
        time.sleep(0.1)
    assert "plain client port off" in herd.log("Jaquez")


def test_tls_1_2_only_where_allowed_and_optional_certificates(make_herd):
    strict = make_herd(graph={"Bailey": []}, tls="on")
    cert = strict.client_cert("alice")
    assert refused_over_tls(lambda: strict.tls_client("Bailey", cert, version=ssl.TLSVersion.TLSv1_2))
    relaxed = make_herd(graph={"Bailey": []}, tls="on",
                        settings={"tls/min_version": "1.2", "tls/client_certs": "optional"})
    cert = relaxed.client_cert("alice")
    old = relaxed.tls_client("Bailey", cert, version=ssl.TLSVersion.TLSv1_2)
    old.send(b"IAMAT alice +1+1 1\nIAMAT bob +1+1 1\n")
    assert AT_PATTERN.match(old.line()) and old.line() == b"? IAMAT bob +1+1 1"
    #   Optional: no certificate, every id (as on the plain port)
    anyone = relaxed.tls_client("Bailey")
    anyone.send(b"IAMAT bob +1+1 1\n")
    assert AT_PATTERN.match(anyone.line())
    assert "client certificates optional" in relaxed.log("Bailey")


def test_keys_others_may_read_are_refused(make_herd):
    herd = make_herd(graph={"Bailey": []}, tls="on", start=False)
    cert, key = herd.client_cert("alice")
    assert os.stat(key).st_mode & 0o777 == 0o600
    assert os.stat(os.path.join(herd.keys, "secret", "ca.pem")).st_mode & 0o777 == 0o600
    server_key = os.path.join(herd.keys, "secret", "Bailey.pem")
    os.chmod(server_key, 0o640)
    result = subprocess.run([HERD_BIN, "--config", herd.config, "Bailey"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 1
    assert f"{server_key}: a private key that others may read (mode 0640) is refused; " \
           f"fix it with: chmod 600 {server_key}" in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1


def test_input_the_tls_session_holds_is_read_without_more_bytes_coming(tls_single):
    """Writes of 25 to 40 kB: records of 16 kB, the last one cut by the
    server's input bound (24 kB), so the session holds decrypted lines the
    socket no longer shows. Each is answered with nothing more sent to
    wake the server (epoll cannot see them: the server must)."""
    herd = tls_single
    client = herd.tls_client("Bailey", herd.client_cert("", prefix=True))
    n = 0
    for size in range(25000, 40000, 1500):
        commands = []
        while sum(map(len, commands)) < size:
            commands.append(f"IAMAT pipelined{n} +1.{n}-2 {1000 + n}\n")
            n += 1
        client.send("".join(commands))
        for command in commands:
            match = AT_PATTERN.match(client.line())
            assert match and match.group(3) == command.split()[1].encode()


def test_the_readmes_tls_section_works_as_written(tmp_path):
    """make run's herd (herd.cfg, on ports of our own), then the README's
    openssl, ncat and Python clients, as written, from its folder."""
    import re
    from conftest import free_ports
    root = os.path.join(os.path.dirname(__file__), "..")
    with open(os.path.join(root, "README.md")) as file:
        readme = file.read()
    section = readme[readme.index("## Clients over TLS"):readme.index("## Documentation")]
    with open(os.path.join(root, "herd.cfg")) as file:
        config = file.read()
    ports = sorted(set(re.findall(r"\b11[0-6]0[1-5]\b", config)))
    mapping = dict(zip(ports, map(str, free_ports(len(ports)))))
    for old, new in mapping.items():
        config = config.replace(old, new)
    (tmp_path / "herd.cfg").write_text(config)
    (tmp_path / "data").mkdir()
    os.symlink(os.path.abspath(os.path.join(root, "data", "places.bin")), tmp_path / "data" / "places.bin")
    herd_run = subprocess.Popen([os.path.join(root, "tools", "herd-run"), HERD_BIN, "herd.cfg"], cwd=tmp_path,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def renumber(text):
        return re.sub(r"\b11[0-6]0[1-5]\b", lambda match: mapping[match.group(0)], text)

    try:
        printed = ""
        while "openssl s_client" not in printed:
            line = herd_run.stdout.readline()
            assert line, printed
            printed += line
        #   The command make run prints is the README's
        commands = [command.replace("\\\n", " ") for command in
                    re.findall(r"^\$ ((?:.*\\\n)*.*)$", section, re.MULTILINE)]
        openssl, ncat = (" ".join(command.split()) for command in commands)
        assert renumber(openssl) in " ".join(printed.split())
        for port in ("11601", "11602"):
            deadline = time.monotonic() + 30
            while True:
                try:
                    socket.create_connection(("127.0.0.1", int(mapping[port])), timeout=1).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline
                    time.sleep(0.1)
        #   The session: the README's lines in, its replies out
        session = section[section.index("$ openssl"):section.index("^C")].split("\n")
        sent = [line for line in session if line.startswith(("IAMAT", "WHATSAT"))]
        expected = [line for line in session if line.startswith(("AT ", "? "))]
        def converse(command, lines, count):
            """Runs a client that ends at ^C, not at end of input: its
            first count lines of output"""
            client = subprocess.Popen(command, shell=True, cwd=tmp_path, stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            try:
                client.stdin.write("".join(f"{line}\n" for line in lines))
                client.stdin.flush()
                return [client.stdout.readline().rstrip("\n") for _ in range(count)]
            finally:
                client.kill()
                client.wait()

        replies = converse(renumber(openssl), sent, 2)
        assert len(expected) == 2
        assert AT_PATTERN.match(replies[0].encode()) and replies[0].split()[3:] == expected[0].split()[3:]
        assert replies[1] == expected[1]
        reply = converse(renumber(ncat), sent[:1], 1)[0]
        assert AT_PATTERN.match(reply.encode()), reply
        program = section[section.index("```python") + 9:]
        program = program[:program.index("```")]
        result = subprocess.run(["python3", "-c", renumber(program)], cwd=tmp_path,
                                capture_output=True, text=True, timeout=30)
        lines = result.stdout.splitlines()
        assert result.returncode == 0 and len(lines) > 3, (result.stdout, result.stderr)
        #   The WHATSAT's AT line is the stored one: Bailey's or Bona's (ncat's)
        assert AT_PATTERN.match(lines[0].encode()) and lines[1].split()[3:] == lines[0].split()[3:]
        assert json.loads("\n".join(lines[2:]))["status"] == "OK"
    finally:
        herd_run.send_signal(signal.SIGINT)
        herd_run.wait(timeout=60)


def test_a_renegotiation_attempt_is_refused_and_stalls_no_one(make_herd):
    """TLS 1.2 allowed (1.3 has no renegotiation): a client that asks to
    renegotiate (openssl s_client's R command) gets no new handshake, and
    the server goes on serving others."""
    herd = make_herd(graph={"Bailey": []}, tls="on", settings={"tls/min_version": "1.2"})
    cert, key = herd.client_cert("alice")
    renegotiator = subprocess.Popen(
        ["openssl", "s_client", "-tls1_2", "-connect", f"127.0.0.1:{herd.tls_ports['Bailey']}",
         "-CAfile", os.path.join(herd.keys, "ca.crt"), "-cert", cert, "-key", key],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        renegotiator.stdin.write("R\n")
        renegotiator.stdin.flush()
        time.sleep(0.5)
        other = herd.tls_client("Bailey", herd.client_cert("bob"))
        other.send(b"IAMAT bob +1+1 1\n")
        assert AT_PATTERN.match(other.line())
    finally:
        renegotiator.kill()
        output = renegotiator.communicate(timeout=30)[0]
    #   The server said no (a no_renegotiation alert), and the session ended
    assert "RENEGOTIATING" in output and "no renegotiation" in output, output
    assert herd.stats("Bailey")["tls"]["handshakes"] == 2
    assert herd.processes["Bailey"].poll() is None


def test_an_operators_own_ca_and_server_certificate_work_instead(make_herd, tmp_path):
    """tls/ca, tls/cert, tls/key (with {server}) pointing at files made by
    another CA than the herd's: clients of that CA get in, with their grants"""
    herd = make_herd(graph={"Bailey": []}, tls="on", start=False)
    own_cert, own_key, ca_cert, ca_key = make_certificate(tmp_path, "Own CA", "herd:id:nobody")
    now = datetime.datetime.now(datetime.timezone.utc)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = (x509.CertificateBuilder()
              .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Bailey")]))
              .issuer_name(ca_cert.subject).public_key(server_key.public_key())
              .serial_number(x509.random_serial_number())
              .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
              .add_extension(x509.SubjectAlternativeName([x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]),
                             critical=False)
              .sign(ca_key, hashes.SHA256()))
    (tmp_path / "Bailey-server.crt").write_bytes(server.public_bytes(serialization.Encoding.PEM))
    key_path = tmp_path / "Bailey-server.key"
    key_path.write_bytes(server_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    os.chmod(key_path, 0o600)
    herd.settings.update({"tls/ca": own_cert, "tls/cert": str(tmp_path / "{server}-server.crt"),
                          "tls/key": str(tmp_path / "{server}-server.key")})
    herd.write_config()
    herd.start()
    assert f"CA {own_cert}" in herd.log("Bailey")
    client_cert, client_key, _, _ = make_certificate(tmp_path, "dave", "herd:id:dave", ca_cert, ca_key)
    client = TlsClient(herd.tls_ports["Bailey"], own_cert, client_cert, client_key)
    client.send(b"IAMAT dave +1+1 1\nIAMAT erin +1+1 1\n")
    assert AT_PATTERN.match(client.line()) and client.line() == b"? IAMAT erin +1+1 1"
    #   The herd's own CA's certificates are strangers here
    herds_cert, herds_key = herd_ca(herd)
    stranger = make_certificate(tmp_path, "dave2", "herd:id:dave", herds_cert, herds_key)[:2]
    assert refused_over_tls(lambda: TlsClient(herd.tls_ports["Bailey"], own_cert, *stranger))
