#!/usr/bin/env python3
"""tests/soak.py: the five-server herd under saturation load at two
servers (herd_load, 50 connections x 16 in flight at each), while
neighbours are killed with -9 and restarted, and one is frozen with
SIGSTOP and thawed. No server may die on its own; afterwards all five
converge. `make soak` runs it for minutes; test_soak.py for seconds.

    python3 tests/soak.py [--seconds N]
"""

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest import Herd  # noqa: E402

HERD_LOAD = os.path.abspath(os.environ.get(
    "HERD_LOAD", os.path.join(os.path.dirname(__file__), "..", "build", "herd_load")))


def soak(herd, seconds, report=print):
    """Loads Bailey and Clark for `seconds` while Bona and Jaquez are
    killed and restarted and Campbell is frozen and thawed, in turns.
    Returns the load generators' lines; raises if a server died."""
    loads = [subprocess.Popen([HERD_LOAD, "127.0.0.1", str(herd.client_ports[name]), "50", "16",
                               str(seconds), f"soak{name}"], stdout=subprocess.PIPE, text=True)
             for name in ("Bailey", "Clark")]
    started = time.monotonic()
    round_number = 0
    while time.monotonic() - started < seconds - 3:
        round_number += 1
        victim = ("Bona", "Jaquez")[round_number % 2]
        herd.kill(victim, signal.SIGKILL)
        time.sleep(1)
        herd.start(victim, wait=False)
        herd.wait_ready(victim, timeout=30)
        herd.processes["Campbell"].send_signal(signal.SIGSTOP)
        time.sleep(1)
        herd.processes["Campbell"].send_signal(signal.SIGCONT)
        for name, process in herd.processes.items():
            if process.poll() is not None:
                raise AssertionError(f"{name} died under load: exit {process.returncode}: "
                                     f"{process.stderr.read().decode(errors='replace')[-2000:]}")
        report(f"soak: round {round_number} at {time.monotonic() - started:.0f} s: all five alive")
        time.sleep(1)
    lines = []
    for load in loads:
        out, _ = load.communicate(timeout=seconds + 60)
        lines.append(out.strip())
        report(f"soak: load {out.strip()}")
    for name, process in herd.processes.items():
        if process.poll() is not None:
            raise AssertionError(f"{name} died under load: exit {process.returncode}")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=300)
    seconds = parser.parse_args().seconds
    folder = tempfile.mkdtemp(prefix="herd-soak-")
    herd = Herd(folder)
    herd.start()
    try:
        soak(herd, seconds)
        states = herd.wait_converged(timeout=120)
        print(f"soak: converged: {next(iter(states.values()))['clients']} clients on all five")
    finally:
        problems = herd.stop_all()
    if problems:
        print("soak: " + "; ".join(problems))
        sys.exit(1)
    print("soak: passed")


if __name__ == "__main__":
    main()
