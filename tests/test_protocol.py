"""The client protocol, byte for byte (docs/PROTOCOL.md section 1), against one
real server."""

import json
import math
import socket
import struct
import time

import pytest

from conftest import AT_PATTERN, Client

EXAMPLE_IAMAT = b"IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503"


@pytest.fixture(params=["plain", "tls"])
def single(request, make_herd):
    """One server, Bailey, spoken to on its plain port, then on its TLS
    port (docs/PROTOCOL.md section 4: inside TLS, section 1 byte for byte)
    with a certificate that grants every id (a prefix of nothing)."""
    if request.param == "plain":
        return make_herd(graph={"Bailey": []})
    herd = make_herd(graph={"Bailey": []}, tls="on")
    cert = herd.client_cert("", prefix=True)
    herd.client = lambda name: herd.tls_client(name, cert)
    return herd


def test_iamat_example_byte_for_byte(single):
    connection = single.client("Bailey")
    before = time.time()
    connection.send(EXAMPLE_IAMAT + b"\n")
    reply = connection.line()
    after = time.time()
    match = AT_PATTERN.match(reply)
    assert match, reply
    server, skew, client, coordinates, client_time = match.groups()
    assert server == b"Bailey"
    assert (client, coordinates, client_time) == (
        b"kiwi.cs.ucla.edu", b"+34.068930-118.445127", b"1621464827.959498503")
    assert skew.startswith(b"+")
    assert before - 1621464827.959498503 - 0.01 <= float(skew) <= after - 1621464827.959498503 + 0.01


def test_skew_is_negative_for_a_client_ahead_and_fields_echo_exactly(single):
    connection = single.client("Bailey")
    future = f"{time.time() + 100:.3f}"
    connection.send(f"IAMAT apple +12-118 {future}\n")
    match = AT_PATTERN.match(connection.line())
    assert match
    assert match.group(2).startswith(b"-")
    assert 99 < -float(match.group(2)) < 101
    assert match.group(4) == b"+12-118"
    assert match.group(5) == future.encode()


def whatsat_reply(server):
    """IAMAT then WHATSAT on one connection; checks the reply's framing."""
    connection = server.client("Bailey")
    connection.send(EXAMPLE_IAMAT + b"\n")
    at_line = connection.line()
    connection.send(b"WHATSAT kiwi.cs.ucla.edu 10 5\n")
    first, text = connection.until_blank().split(b"\n", 1)
    assert first == at_line
    assert b"\n\n" not in text and not text.endswith(b"\n")
    places = json.loads(text)
    assert places["html_attributions"] == []
    return connection, at_line, places


def distance_km(a_lat, a_lon, b_lat, b_lon):
    a_lat, a_lon, b_lat, b_lon = map(math.radians, (a_lat, a_lon, b_lat, b_lon))
    h = math.sin((b_lat - a_lat) / 2) ** 2 + math.cos(a_lat) * math.cos(b_lat) * math.sin((b_lon - a_lon) / 2) ** 2
    return 2 * 6371.0088 * math.asin(math.sqrt(h))


def test_whatsat_reply_shape(single):
    connection, at_line, places = whatsat_reply(single)
    assert places["status"] == "OK"
    assert len(places["results"]) == 5
    #   Around the client, nearest first: a latitude and longitude swapped,
    #   or kilometres taken for metres, put them elsewhere
    def distances(results):
        return [distance_km(34.068930, -118.445127, result["geometry"]["location"]["lat"],
                            result["geometry"]["location"]["lng"]) for result in results]
    near = distances(places["results"])
    assert near == sorted(near) and near[-1] <= 10, near
    #   The radius is kept: 20 within 50 km reach past 1 km, and those
    #   within 1 km are all a 1 km WHATSAT returns
    connection.send(b"WHATSAT kiwi.cs.ucla.edu 50 20\n")
    wide = distances(json.loads(connection.until_blank().split(b"\n", 1)[1])["results"])
    connection.send(b"WHATSAT kiwi.cs.ucla.edu 1 20\n")
    narrow = distances(json.loads(connection.until_blank().split(b"\n", 1)[1])["results"])
    assert len(wide) == 20 and wide[-1] > 1
    assert narrow == [d for d in wide if d <= 1] and all(d <= 1 for d in narrow), (narrow, wide)


def test_whatsat_with_no_provider(make_herd):
    single = make_herd(graph={"Bailey": []}, settings={"places/provider": "none"})
    connection, at_line, places = whatsat_reply(single)
    #   No provider configured: the UNKNOWN_ERROR shape, saying so
    assert places["status"] == "UNKNOWN_ERROR"
    assert places["results"] == []
    assert "no places provider is configured" in places["error_message"]
    #   Connection still usable
    connection.send(b"WHATSAT kiwi.cs.ucla.edu 50 20\n")
    assert connection.until_blank().split(b"\n", 1)[0] == at_line


BAD_LINES = [
    b"HELLO world",                                         # unknown verb
    b"iamat kiwi +34-118 1",                                # verbs are case-sensitive
    b"IAMAT kiwi +34-118",                                  # too few fields
    b"IAMAT kiwi +34-118 1 extra",                          # too many fields
    b"IAMAT kiwi 34-118 1",                                 # latitude without sign
    b"IAMAT kiwi +91-118 1",                                # latitude out of range
    b"IAMAT kiwi +34-181 1",                                # longitude out of range
    b"IAMAT kiwi +34.5 1",                                  # no longitude
    b"IAMAT kiwi +34-118abc 1",                             # junk after coordinates
    b"IAMAT kiwi +34-118 yesterday",                        # bad time
    b"IAMAT kiwi +34-118 -5",                               # negative time
    b"IAMAT kiwi +34-118 1.5e9",                            # exponent time
    b"IAMAT " + b"k" * 256 + b" +34-118 1",                 # client id too long
    b"WHATSAT kiwi.cs.ucla.edu 10",                         # too few fields
    b"WHATSAT kiwi.cs.ucla.edu 0 5",                        # radius 0
    b"WHATSAT kiwi.cs.ucla.edu 51 5",                       # radius above 50
    b"WHATSAT kiwi.cs.ucla.edu -3 5",                       # negative radius
    b"WHATSAT kiwi.cs.ucla.edu 10 0",                       # count 0
    b"WHATSAT kiwi.cs.ucla.edu 10 21",                      # count above 20
    b"WHATSAT kiwi.cs.ucla.edu 10 2.5",                     # count not whole
    b"WHATSAT nobody.example 10 5",                         # unknown client
    b"AT Bailey +0.1 kiwi.cs.ucla.edu +34-118 1",           # an AT line from a client
    b"\x00\x01\x02 binary \xff\xfe junk",                  # binary junk
    b"   IAMAT  ",                                          # verb alone with spaces
]


@pytest.mark.parametrize("bad", BAD_LINES)
def test_bad_input_is_echoed_and_connection_stays_usable(single, bad):
    connection = single.client("Bailey")
    connection.send(EXAMPLE_IAMAT + b"\n")
    stored = connection.line()
    connection.send(bad + b"\n")
    assert connection.line() == b"? " + bad
    #   Same connection, and the data is intact
    connection.send(b"WHATSAT kiwi.cs.ucla.edu 10 1\n")
    assert connection.until_blank().split(b"\n", 1)[0] == stored


def test_crlf_is_not_echoed_and_blank_lines_get_no_reply(single):
    connection = single.client("Bailey")
    connection.send(b"\n  \t \r\nbogus line\r\n\n" + EXAMPLE_IAMAT + b"\r\n")
    assert connection.line() == b"? bogus line"
    assert AT_PATTERN.match(connection.line())


def test_over_long_line_is_answered_cut_and_closed(single):
    other = single.client("Bailey")
    connection = single.client("Bailey")
    long_line = b"x" * 9000
    connection.send(long_line + b"\n")
    assert connection.line() == b"? " + long_line[:8192]
    assert connection.closed()
    #   The server and other connections carry on
    other.send(EXAMPLE_IAMAT + b"\n")
    assert AT_PATTERN.match(other.line())


def test_line_at_the_limit_is_still_a_line(single):
    connection = single.client("Bailey")
    exact = b"y" * 8192
    connection.send(exact + b"\r\n")
    assert connection.line() == b"? " + exact
    connection.send(EXAMPLE_IAMAT + b"\n")
    assert AT_PATTERN.match(connection.line())


def test_final_line_without_newline_after_half_close(single):
    connection = single.client("Bailey")
    connection.send(EXAMPLE_IAMAT)
    connection.half_close()
    assert AT_PATTERN.match(connection.line())
    assert connection.closed()


def test_whatsat_after_half_close_is_answered_in_full(single):
    connection = single.client("Bailey")
    connection.send(EXAMPLE_IAMAT + b"\nWHATSAT kiwi.cs.ucla.edu 5 3")
    connection.half_close()
    assert AT_PATTERN.match(connection.line())
    at_line, text = connection.until_blank().split(b"\n", 1)
    assert AT_PATTERN.match(at_line)
    json.loads(text)
    assert connection.closed()


def test_pipelined_commands_in_one_write_answer_in_order(single):
    connection = single.client("Bailey")
    commands = []
    for n in range(200):
        commands.append(f"IAMAT client{n} +1.{n}-2 {1000 + n}\n")
        if n % 10 == 0:
            commands.append(f"WHATSAT client{n} 5 2\n")
        if n % 7 == 0:
            commands.append(f"BAD {n}\n")
    connection.send("".join(commands))
    for command in commands:
        if command.startswith("IAMAT"):
            match = AT_PATTERN.match(connection.line())
            assert match and match.group(3) == command.split()[1].encode()
        elif command.startswith("WHATSAT"):
            at_line = connection.until_blank().split(b"\n", 1)[0]
            assert AT_PATTERN.match(at_line).group(3) == command.split()[1].encode()
        else:
            assert connection.line() == b"? " + command.strip().encode()


def test_one_command_split_over_many_writes(single):
    connection = single.client("Bailey")
    connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for byte in EXAMPLE_IAMAT + b"\n":
        connection.send(bytes([byte]))
        time.sleep(0.001)
    assert AT_PATTERN.match(connection.line())


def test_stale_iamat_is_answered_but_does_not_overwrite(single):
    connection = single.client("Bailey")
    connection.send(b"IAMAT pear +10+10 2000.5\n")
    newer = connection.line()
    connection.send(b"IAMAT pear +20+20 2000.4999999999\n")
    stale = connection.line()
    assert AT_PATTERN.match(stale).group(4) == b"+20+20"
    assert single.stored_line("Bailey", "pear") == newer


def test_client_that_resets_or_vanishes_does_not_hurt_the_server(single):
    for _ in range(20):
        rude = single.client("Bailey")
        rude.send(b"IAMAT half +1+1 ")           # partial line, then RST
        rude.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        rude.close()
        vanish = single.client("Bailey")
        vanish.send(b"WHATSAT kiwi 10 5\nIAMAT x +1+1 1\n")
        vanish.close()
    connection = single.client("Bailey")
    connection.send(EXAMPLE_IAMAT + b"\n")
    assert AT_PATTERN.match(connection.line())


def test_client_that_never_reads_is_dropped_without_stalling_others(single):
    greedy = single.client("Bailey")
    greedy.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    polite = single.client("Bailey")
    batch = b"".join(b"IAMAT greedy%d +1+1 %d\n" % (n, n) for n in range(2000))
    dropped = False
    deadline = time.monotonic() + 60
    greedy.sock.settimeout(2)
    #   About 190 kB of replies per batch; the bound is 1 MiB pending
    for round_number in range(400):
        try:
            greedy.send(batch)
        except (BrokenPipeError, ConnectionResetError):
            dropped = True
            break
        except socket.timeout:
            pass                #   Server not reading us (yet): not a drop
        if round_number % 20 == 0:
            polite.send(f"IAMAT polite +1+1 {round_number}\n")
            assert AT_PATTERN.match(polite.line())
        if time.monotonic() > deadline:
            break
    assert dropped, "a client that never reads was not dropped"
    assert "not reading its replies" in single.log("Bailey")
    polite.send(EXAMPLE_IAMAT + b"\n")
    assert AT_PATTERN.match(polite.line())
