"""A full store that still converges: with more distinct clients than
herd/max_stored arriving at two servers at once, every server keeps the
same max_stored clients (the newest by the order updates are compared
in), says it is full in STATE, STATS and /metrics, and answers "?" only
for a new client older than every one it holds."""

import threading

from conftest import AT_PATTERN


def test_full_stores_converge_on_the_newest_clients(make_herd):
    herd = make_herd(settings={"herd/max_stored": 50})
    sent, refused, problems = {}, [], []

    def feed(name, offset):
        try:
            connection = herd.client(name)
            for n in range(150):
                client, time = f"{name.lower()}{n}", 1000 + 2 * n + offset
                connection.send(f"IAMAT {client} +1+1 {time}\n")
                line = connection.line()
                if AT_PATTERN.match(line):
                    sent[client] = time
                else:
                    #   A full store refuses a new client older than all it
                    #   holds (the other feeder may be ahead): that is a "?"
                    assert line == f"? IAMAT {client} +1+1 {time}".encode(), line
                    refused.append(client)
            connection.close()
        except Exception as error:          # noqa: BLE001 -- reported below
            problems.append(error)

    feeders = [threading.Thread(target=feed, args=("Bailey", 0)),
               threading.Thread(target=feed, args=("Jaquez", 1))]
    for feeder in feeders:
        feeder.start()
    for feeder in feeders:
        feeder.join(timeout=60)
    assert not problems, problems
    assert len(sent) >= 200, (len(sent), len(refused))
    states = herd.wait_converged(timeout=30)
    assert all(state["clients"] == 50 and state["store_full"] for state in states.values()), states
    #   The 50 newest of the 300, everywhere
    newest = sorted(sent, key=sent.get)[-50:]
    for name in herd.graph:
        assert herd.stored_line(name, newest[0]) is not None
        assert herd.stored_line(name, sorted(sent, key=sent.get)[-51]) is None
    stats = herd.stats("Bailey")
    assert stats["store"]["full"] is True and stats["store"]["evicted"] >= 100
    #   A new client older than every one held is refused; a newer one is taken
    connection = herd.client("Clark")
    connection.send("IAMAT ancient +1+1 5\n")
    assert connection.line() == b"? IAMAT ancient +1+1 5"
    connection.send("IAMAT recent +1+1 99999\n")
    assert AT_PATTERN.match(connection.line())
    states = herd.wait_converged(timeout=30)
    assert all(state["clients"] == 50 for state in states.values())
