"""Many clients at once on one event loop (bounded in count and time)."""

import asyncio
import json

from conftest import AT_PATTERN

CONNECTIONS = 1000


async def one_client(port, number, opened):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    opened.append(number)
    #   Hold every connection open before any talks
    while len(opened) < CONNECTIONS:
        await asyncio.sleep(0.01)
    writer.write(f"IAMAT load{number} +{number % 90}.5-{number % 180}.25 {1000 + number}\n"
                 f"WHATSAT load{number} 10 3\n".encode())
    await writer.drain()
    at_line = (await reader.readline()).rstrip(b"\n")
    stored = (await reader.readline()).rstrip(b"\n")
    text = (await reader.readuntil(b"\n\n")).rstrip(b"\n")
    writer.close()
    await writer.wait_closed()
    return number, at_line, stored, json.loads(text)


async def many_clients(port):
    opened = []
    tasks = [one_client(port, number, opened) for number in range(CONNECTIONS)]
    return await asyncio.wait_for(asyncio.gather(*tasks), timeout=120)


def test_a_thousand_concurrent_connections(make_herd):
    herd = make_herd(graph={"Bailey": []}, settings={"herd/log_traffic": 0,
                                                     "places/provider": "offline",
                                                     "places/queue": 2000})
    results = asyncio.run(many_clients(herd.client_ports["Bailey"]))
    assert len(results) == CONNECTIONS
    for number, at_line, stored, places in results:
        match = AT_PATTERN.match(at_line)
        assert match and match.group(3) == f"load{number}".encode()
        assert stored == at_line
        #   The offline provider answers every one: no error may hide here
        assert places["status"] in ("OK", "ZERO_RESULTS"), places
        assert len(places["results"]) <= 3
        assert (places["status"] == "OK") == bool(places["results"])
    #   Land and sea alike: some of the 1,000 points have places near them
    assert sum(places["status"] == "OK" for _, _, _, places in results) >= 20
    #   The server is still fine afterwards
    connection = herd.client("Bailey")
    connection.send(b"IAMAT after +1+1 1\n")
    assert AT_PATTERN.match(connection.line())
