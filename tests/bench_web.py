"""make bench: the live map's figures (herd-monitor --web in headless
chromium) at 1,000 and 1,000,000 clients: how long the page takes to load
(page, land, first frame), to show every client, how long one frame takes
to draw (so the frames per second it can keep), and the bytes per second
sent to the browser while it catches up and while 10,000 clients move."""

import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import json

sys.path.insert(0, os.path.dirname(__file__))
from browser import Browser             # noqa: E402
from conftest import Herd               # noqa: E402

HERD_MONITOR = os.environ["HERD_MONITOR"]
HERD_LOAD = os.environ["HERD_LOAD"]


def herd_view(base, token):
    return json.loads(urllib.request.urlopen(f"{base}/herd?token={token}", timeout=10).read())


def run(total):
    herd = Herd(tempfile.mkdtemp(prefix="herd-bench-web-"), graph={"Bailey": []})
    herd.start()
    monitor = subprocess.Popen([HERD_MONITOR, "--config", herd.config, "--web", "127.0.0.1:0"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    url = monitor.stdout.readline().split(" is at ")[1].strip()
    base, token = url.split("/?token=")
    browser = None
    try:
        #   The feed's slow joiner: a first client until the monitor has it
        while herd_view(base, token).get("clients", 0) == 0:
            herd.iamat("Bailey", "first", "+1+1", f"{time.time():.9f}")
            time.sleep(0.2)
        port = str(herd.client_ports["Bailey"])
        subprocess.run([HERD_LOAD, "--distinct", str(total), "127.0.0.1", port, "50", "16", "300", "bench"],
                       check=True, capture_output=True, timeout=600)
        deadline = time.monotonic() + 300
        while herd_view(base, token).get("clients", 0) < total + 1:
            assert time.monotonic() < deadline, "the monitor never held them all"
            time.sleep(0.5)
        browser = Browser()
        started = time.monotonic()
        browser.goto(url)
        browser.wait_for("window.herdMap && herdMap.ready", timeout=120)
        loaded_ms = browser.evaluate("herdMap.loadedMs")
        browser.wait_for(f"herdMap.clients >= {total + 1}", timeout=600, pause=0.5)
        all_shown = time.monotonic() - started
        catch_up_rate = browser.evaluate("herdMap.bytes") / all_shown
        draws = [browser.evaluate("herdMap.redraw()") for _ in range(5)]
        draw_ms = sorted(draws)[2]
        aggregated = browser.evaluate("herdMap.aggregated")
        #   10,000 clients moving for 10 s: what reaches the browser
        before = browser.evaluate("herdMap.bytes")
        load = subprocess.Popen([HERD_LOAD, "127.0.0.1", port, "10", "16", "10", "moving"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        moving_started = time.monotonic()
        load.wait(timeout=60)
        time.sleep(1)
        moving_rate = (browser.evaluate("herdMap.bytes") - before) / (time.monotonic() - moving_started)
        #   An IAMAT until it shows in the page, ten times
        shown = []
        for n in range(10):
            sent = time.monotonic()
            herd.iamat("Bailey", f"probe{n}", "+10+10", f"{time.time():.9f}")
            browser.wait_for(f"herdMap.lookup('probe{n}') !== null", timeout=60, pause=0.01)
            shown.append(time.monotonic() - sent)
        shown_ms = sorted(shown)[5] * 1000
        errors = browser.evaluate("herdMap.errors") + browser.errors
        print(f"  {total:>9,} clients: page loaded in {loaded_ms:,.0f} ms, all shown after {all_shown:.1f} s "
              f"({catch_up_rate / 1024:,.0f} KiB/s meanwhile); one frame {draw_ms:.1f} ms "
              f"({1000 / max(draw_ms, 0.1):,.0f} frames/s possible{', aggregated by area' if aggregated else ''}); "
              f"10,000 clients moving: {moving_rate / 1024:,.0f} KiB/s to the browser; "
              f"an IAMAT shown after {shown_ms:,.0f} ms (median of 10); "
              f"{len(errors)} page errors", flush=True)
    finally:
        if browser:
            browser.close()
        monitor.terminate()
        monitor.wait(timeout=20)
        herd.stop_all()


if __name__ == "__main__":
    print("The live map (herd-monitor --web, headless chromium, one server):")
    for total in (1000, 1000000):
        run(total)
