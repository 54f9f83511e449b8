"""herd-monitor --web, the live map, in a real browser (Debian's chromium,
headless, over the DevTools protocol): the page loads with no error, a
client sent by IAMAT appears at its place, a click shows its AT line and
a WHATSAT around it, a killed server's links turn lost; without the token
every request gets 401 and nothing else."""

import math
import os
import random
import shutil
import subprocess
import time
import urllib.error
import urllib.request

from browser import CHROMIUM, Browser

HERD_MONITOR = os.path.abspath(os.environ.get(
    "HERD_MONITOR", os.path.join(os.path.dirname(__file__), "..", "build", "herd-monitor")))


def start_web(herd, *extra):
    process = subprocess.Popen([HERD_MONITOR, "--config", herd.config, "--web", "127.0.0.1:0", *extra],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = process.stdout.readline()
    assert " is at http://127.0.0.1:" in line, (line, process.stderr.read() if process.poll() is not None else "")
    return process, line.split(" is at ")[1].strip()


def stop_web(process):
    process.terminate()
    assert process.wait(timeout=20) == 0
    stderr = process.stderr.read()
    assert "Sanitizer" not in stderr and "runtime error" not in stderr, stderr


def get(url, headers=None):
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=20) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_without_the_token_every_request_gets_401_and_nothing_else(herd, tmp_path):
    process, url = start_web(herd)
    base, token = url.split("/?token=")
    try:
        for path in ("/", "/land", "/herd", "/events", "/client?client=x", "/whatsat?client=x&radius=1"):
            joiner = "&" if "?" in path else "?"
            for wrong in ("", f"{joiner}token=", f"{joiner}token={token[:-1]}", f"{joiner}token={token}0"):
                assert get(base + path + wrong) == (401, b"401 Unauthorized\n"), (path, wrong)
        assert get(base + "/herd", {"Authorization": "Bearer nope"})[0] == 401
        assert get(base + "/herd", {"Authorization": f"Bearer {token}"})[0] == 200
        status, page = get(url)
        assert status == 200 and b"<canvas" in page
        #   No byte of the page comes from anywhere else
        assert b"http://" not in page and b"https://" not in page and b"//cdn" not in page
    finally:
        stop_web(process)
    #   A token of one's own from a file; a short one is refused in one line
    token_file = tmp_path / "token"
    token_file.write_text("a-token-of-our-own-choosing\n")
    process, url = start_web(herd, "--token-file", str(token_file))
    assert url.endswith("/?token=a-token-of-our-own-choosing")
    assert get(url)[0] == 200
    stop_web(process)
    token_file.write_text("short\n")
    result = subprocess.run([HERD_MONITOR, "--config", herd.config, "--web", "127.0.0.1:0",
                             "--token-file", str(token_file)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == "herd-monitor: the web token must be 16 characters or more"


def distance_km(a_lat, a_lon, b_lat, b_lon):
    a_lat, a_lon, b_lat, b_lon = map(math.radians, (a_lat, a_lon, b_lat, b_lon))
    h = math.sin((b_lat - a_lat) / 2) ** 2 + math.cos(a_lat) * math.cos(b_lat) * math.sin((b_lon - a_lon) / 2) ** 2
    return 2 * 6371.0088 * math.asin(math.sqrt(h))


def test_the_live_map_in_a_browser(herd, tmp_path):
    assert CHROMIUM, "no chromium: tools/install-deps --test installs it"
    process, url = start_web(herd)
    browser = Browser()
    try:
        browser.goto(url)
        browser.wait_for("window.herdMap && herdMap.ready && herdMap.land > 100000", timeout=60)
        assert browser.evaluate("Object.keys(herdMap.servers).length") == 5 or \
            browser.wait_for("Object.keys(herdMap.servers).length === 5")
        #   The feeds' slow joiner: send until the page has it
        deadline = time.monotonic() + 60
        while not browser.evaluate("herdMap.lookup('kiwi.web') !== null"):
            assert time.monotonic() < deadline, "the first client never showed"
            herd.iamat("Bailey", "kiwi.web", "+34.068930-118.445127", f"{time.time():.9f}")
            time.sleep(0.3)
        #   It moves: the page follows, at the right place, from its server
        herd.iamat("Campbell", "kiwi.web", "+34.052200-118.243700", f"{time.time() + 1:.9f}")
        browser.wait_for("herdMap.lookup('kiwi.web').latitude === 34.0522", timeout=30)
        spot = browser.evaluate("herdMap.lookup('kiwi.web')")
        assert (spot["latitude"], spot["longitude"], spot["server"]) == (34.0522, -118.2437, "Campbell")
        assert [spot["x"], spot["y"]] == browser.evaluate("herdMap.project(34.0522, -118.2437)")
        width, height = browser.evaluate("[innerWidth, innerHeight]")
        assert 0 <= spot["x"] < width and 0 <= spot["y"] < height
        #   A click on it: its AT line, who heard it first, and a WHATSAT
        for kind in ("mousePressed", "mouseReleased"):
            browser.call("Input.dispatchMouseEvent", type=kind, x=spot["x"], y=spot["y"], button="left",
                         clickCount=1)
        at = browser.wait_for("document.getElementById('at') && document.getElementById('at').textContent")
        assert at.startswith("AT Campbell ") and " kiwi.web +34.052200-118.243700 " in at
        assert browser.evaluate("document.getElementById('first').textContent") == "Campbell"
        browser.evaluate("document.getElementById('radius').value = '10'; document.getElementById('ask').click()")
        places = browser.wait_for("herdMap.places.length > 0 && herdMap.places", timeout=30)
        assert all(distance_km(34.0522, -118.2437, place["lat"], place["lng"]) <= 10.01 for place in places)
        #   Forgotten: the client leaves the map (the feed's GONE), the
        #   others stay
        herd.iamat("Bona", "kiwi.gone", "+10+10", f"{time.time():.9f}")
        browser.wait_for("herdMap.lookup('kiwi.gone') !== null", timeout=30)
        connection = herd.client("Clark")
        connection.send(f"FORGET kiwi.web {time.time() + 2:.9f}\n".encode())
        assert connection.line().startswith(b"GONE Clark ")
        connection.close()
        browser.wait_for("herdMap.lookup('kiwi.web') === null", timeout=30)
        assert browser.evaluate("herdMap.lookup('kiwi.gone').latitude") == 10
        #   A few hundred clients moving, as docs/using.md's picture shows
        rng = random.Random(5)
        names = list(herd.graph)
        for step in range(2):
            for n in range(300):
                lat, lon = rng.uniform(-45, 60), rng.uniform(-125, 145)
                herd.iamat(names[n % 5], f"walker{n}", f"{lat:+.6f}{lon:+.6f}", f"{time.time():.9f}")
        browser.wait_for("herdMap.clients === 301", timeout=60)
        #   The servers' rows say as much, from their own STATE
        browser.wait_for("Object.values(herdMap.servers).every(function (s) { return s.clients >= 301; })",
                         timeout=60)
        screenshot = tmp_path / "live-map.png"
        browser.screenshot(str(screenshot))
        assert screenshot.stat().st_size > 10000
        if os.environ.get("HERD_WEB_SCREENSHOT"):
            shutil.copy(screenshot, os.environ["HERD_WEB_SCREENSHOT"])
        #   A killed server: its neighbours' links to it turn lost, and it
        #   shows as not answering
        browser.wait_for("herdMap.links['Clark->Jaquez'] === 'live'", timeout=30)
        herd.kill("Jaquez")
        browser.wait_for("herdMap.links['Clark->Jaquez'] === 'lost' && herdMap.links['Campbell->Jaquez'] === 'lost'"
                         " && herdMap.links['Jaquez->Clark'] === 'down'", timeout=60)
        assert browser.evaluate("herdMap.errors") == []
        assert browser.errors == []
    finally:
        browser.close()
        stop_web(process)


def test_the_map_cannot_be_locked_by_idle_sockets_or_streams_that_never_read(herd):
    """40 idle sockets from 40 addresses (no token), then 1,000 event
    streams that never read: the owner's page, its herd view and a stream
    of its own are served throughout, and the idle sockets are closed."""
    import socket
    process, url = start_web(herd)
    base, token = url.split("/?token=")
    port = int(base.rsplit(":", 1)[1])
    held = []

    def connect(source):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)     #   Takes little, reads nothing
        sock.settimeout(5)
        sock.bind((source, 0))
        sock.connect(("127.0.0.1", port))
        held.append(sock)
        return sock

    try:
        idle = [connect(f"127.0.4.{n + 1}") for n in range(40)]
        for attempt in range(8):
            status, page = get(url)
            assert status == 200 and b"<canvas" in page, attempt
            time.sleep(0.5)
        request = f"GET /events?token={token} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        for n in range(1000):
            try:
                connect(f"127.0.5.{n % 50 + 1}").sendall(request)
            except OSError:
                pass                #   Refused past the bounds: as it should be
        assert get(url)[0] == 200
        assert get(base + "/herd", {"Authorization": f"Bearer {token}"})[0] == 200
        with urllib.request.urlopen(f"{base}/events?token={token}", timeout=10) as stream:
            assert stream.status == 200
            assert stream.read(1)           #   The owner's own stream moves
        #   Silent sockets end at the idle timeout (5 s)
        deadline = time.monotonic() + 30
        for sock in idle:
            while True:
                try:
                    if sock.recv(4096) == b"":
                        break
                except (ConnectionResetError, BrokenPipeError):
                    break
                except socket.timeout:
                    pass
                assert time.monotonic() < deadline, "an idle socket was never closed"
    finally:
        for sock in held:
            sock.close()
        stop_web(process)


def test_a_restarted_servers_rate_is_never_negative(make_herd):
    """Bona counts the updates it took from Bailey; restarted, its counter
    starts again from 0: the map's rate for it is what came since, never
    the difference of the two counters (it read -2073 in/s)."""
    import json
    herd = make_herd(graph={"Bailey": ["Bona"], "Bona": ["Bailey"]}, settings={"herd/log_traffic": 0})
    process, url = start_web(herd)
    base, token = url.split("/?token=")

    def view():
        status, body = get(f"{base}/herd?token={token}")
        assert status == 200
        return {server["name"]: server for server in json.loads(body)["servers"]}

    try:
        connection = herd.client("Bailey")
        connection.send("".join(f"IAMAT rate{n} +1+1 {n + 1}\n" for n in range(3000)))
        for _ in range(3000):
            connection.line()
        connection.close()
        deadline = time.monotonic() + 30
        while herd.stats("Bona")["updates"]["in"] < 3000:
            assert time.monotonic() < deadline, "Bona never took Bailey's updates"
            time.sleep(0.2)
        time.sleep(2.5)                     #   Two rounds of the map's view see it
        herd.kill("Bona")
        herd.start("Bona")
        rates = []
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            rate = view()["Bona"].get("updates_in_per_s")
            if rate is not None:
                rates.append(rate)
            time.sleep(0.25)
        assert rates and min(rates) >= 0, rates
    finally:
        stop_web(process)


def test_a_page_whose_herd_monitor_stopped_says_it_is_stale(herd):
    """The page is only as fresh as herd-monitor's answers: stopped (or
    restarted with a new token), the page says so within seconds"""
    assert CHROMIUM, "no chromium: tools/install-deps --test installs it"
    process, url = start_web(herd)
    browser = Browser()
    try:
        browser.goto(url)
        browser.wait_for("window.herdMap && herdMap.ready && Object.keys(herdMap.servers).length === 5",
                         timeout=60)
        assert browser.evaluate("herdMap.stale") is False
        assert "STALE" not in browser.evaluate("document.getElementById('status').textContent")
        stop_web(process)
        process = None
        browser.wait_for("herdMap.stale === true", timeout=15)
        text = browser.evaluate("document.getElementById('status').textContent")
        assert text.startswith("STALE: nothing from herd-monitor for "), text
        assert browser.evaluate("document.getElementById('herd').classList.contains('stale')")
    finally:
        browser.close()
        if process:
            stop_web(process)


def test_a_map_started_after_the_clients_shows_them_all(herd):
    """The map starts from a server's snapshot, then follows the feeds: the
    clients that arrived before it are on it, forgotten ones are not"""
    assert CHROMIUM, "no chromium: tools/install-deps --test installs it"
    connection = herd.client("Bona")
    connection.send("".join(f"IAMAT before{n} +{n % 80}.5-{n % 170}.25 {1700000000 + n}\n" for n in range(1000)))
    for _ in range(1000):
        connection.line()
    connection.send(b"FORGET before7 1700001000\n")
    assert connection.line().startswith(b"GONE ")
    connection.close()
    herd.wait_converged()
    process, url = start_web(herd)
    browser = Browser()
    try:
        browser.goto(url)
        browser.wait_for("window.herdMap && herdMap.ready", timeout=60)
        browser.wait_for("herdMap.clients === 999", timeout=30)
        assert browser.evaluate("herdMap.lookup('before999').latitude") == 39.5
        assert browser.evaluate("herdMap.lookup('before7')") is None
    finally:
        browser.close()
        stop_web(process)


def test_the_map_tells_servers_apart_and_says_what_it_shows(herd):
    """Server colours that are no link state's, kept when 25,000 clients
    are drawn as bins; a legend; a panel that folds; a scale; a WHATSAT
    that says how far its places reach; a status line that says what it
    counts"""
    assert CHROMIUM, "no chromium: tools/install-deps --test installs it"
    rng = random.Random(7)
    names = list(herd.graph)
    for name in names:
        connection = herd.client(name)
        lines = []
        for n in range(5000):
            lat, lon = rng.uniform(-50, 60), rng.uniform(-120, 140)
            lines.append(f"IAMAT {name}{n} {lat:+.5f}{lon:+.5f} {1700000000 + n}\n")
        connection.send("".join(lines))
        for _ in range(5000):
            connection.line()
        connection.close()
    herd.iamat("Clark", "la", "+34.052200-118.243700", f"{time.time():.3f}")
    herd.wait_converged()
    process, url = start_web(herd)
    browser = Browser()
    try:
        browser.goto(url)
        browser.wait_for("window.herdMap && herdMap.ready && herdMap.clients >= 25001", timeout=60)
        colours = browser.evaluate("herdMap.colours()")
        assert not set(colours["servers"]) & set(colours["links"].values())
        assert len({browser.evaluate(f"herdMap.serverColour('{name}')") for name in names}) == 5
        browser.wait_for("herdMap.aggregated === true", timeout=30)
        assert browser.evaluate("herdMap.aggregateColours") == 5
        legend = browser.wait_for("document.getElementById('legend').textContent", timeout=30)
        assert all(name in legend for name in names)
        assert all(state in legend for state in ("live", "syncing", "lost", "incompatible"))
        #   The herd panel folds out of the way, and back
        browser.evaluate("document.getElementById('fold').click()")
        assert browser.evaluate("document.getElementById('servers').offsetHeight") == 0
        browser.evaluate("document.getElementById('fold').click()")
        assert browser.evaluate("document.getElementById('servers').offsetHeight") > 0
        #   A scale, at world and at city zoom
        assert browser.evaluate("herdMap.scaleKm") >= 1000
        browser.evaluate("herdMap.zoom(20000, 34.0522, -118.2437)")
        assert browser.evaluate("herdMap.scaleKm") <= 1
        assert browser.evaluate("document.getElementById('scale-text').textContent").endswith(" m")
        #   Names to orient by, from the places data, around the view
        browser.evaluate("herdMap.zoom(300, 34.0522, -118.2437)")
        names = browser.wait_for("herdMap.names.length > 0 && herdMap.names", timeout=30)
        assert all(distance_km(34.0522, -118.2437, n["lat"], n["lng"]) <= 50.01 for n in names)
        #   A WHATSAT says how far the places shown reach within the radius asked
        browser.evaluate("herdMap.select('la')")
        browser.wait_for("!!document.getElementById('ask')", timeout=30)
        browser.evaluate("document.getElementById('radius').value = '50'; document.getElementById('ask').click()")
        found = browser.wait_for("herdMap.places.length > 0 && document.getElementById('found').textContent",
                                 timeout=30)
        reach = browser.evaluate("herdMap.placesReachKm")
        assert 0 < reach <= 50.01 and f"the farthest {reach:.1f} km away (the circle: the 50 km asked)" in found
        assert " redraws/s · feed " in browser.evaluate("document.getElementById('status').textContent")
        assert browser.evaluate("herdMap.errors") == []
    finally:
        browser.close()
        stop_web(process)
