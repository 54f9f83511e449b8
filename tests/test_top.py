"""herd-monitor --top: the live view, run in a real terminal (tmux) and
read back with capture-pane, as a person would see it."""

import os
import re
import subprocess
import threading
import time

MONITOR = os.environ.get("HERD_MONITOR", "build/herd-monitor")


def screen(session):
    return subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True,
                          check=True).stdout


def rows(text):
    """{server: [fields]} from the screen's table"""
    table = {}
    for line in text.splitlines():
        fields = line.split()
        if fields and fields[0] in ("Bailey", "Bona", "Campbell", "Clark", "Jaquez"):
            table[fields[0]] = fields
    return table


def top_in_tmux(herd, columns, name):
    """herd-monitor --top in a tmux session columns wide, once every row
    has numbers (or 15 s): (session, table, screen text). The caller
    kills the session."""
    session = f"herd-top-{name}-{os.getpid()}"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", str(columns), "-y", "20",
                    f"{MONITOR} --config {herd.config} --top"], check=True)
    deadline = time.monotonic() + 15
    table, text = {}, ""
    while time.monotonic() < deadline:
        time.sleep(0.5)
        text = screen(session)
        table = rows(text)
        if len(table) == 5 and table["Bailey"][3] != "-":
            break
    return session, table, text


def test_top_shows_every_server_live(herd):
    for n in range(20):
        herd.iamat("Bailey", f"top{n}", "+1+1", f"{1000 + n}")
    herd.wait_converged()
    session = f"herd-top-{os.getpid()}"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "150", "-y", "20",
                    f"{MONITOR} --config {herd.config} --top"], check=True)
    running = True

    def traffic():
        connection = herd.client("Bailey")
        n = 0
        while running and n < 20000:
            n += 1
            connection.send(f"IAMAT busy{n % 50} +2+2 {5000 + n}\n")
            connection.line()
            time.sleep(0.002)
        connection.close()

    feeder = threading.Thread(target=traffic)
    feeder.start()
    try:
        deadline = time.monotonic() + 15
        table = {}
        while time.monotonic() < deadline:
            time.sleep(0.5)
            text = screen(session)
            table = rows(text)
            #   Rates need two seconds of counters
            if len(table) == 5 and table["Bailey"][3] not in ("-", "0"):
                break
        assert "SERVER" in text and "IAMAT/s" in text and "DIGEST" in text, text
        assert set(table) == {"Bailey", "Bona", "Campbell", "Clark", "Jaquez"}, text
        assert float(table["Bailey"][3]) > 0, text                  #   IAMAT/s at Bailey
        assert all(int(row[1]) >= 20 for row in table.values()), text    #   Clients stored
        assert table["Bailey"][7] == "2/2" and table["Bona"][7] == "3/3", text     #   Links up
        assert all(" ".join(row[8:10]) == "caught up" for row in table.values()), text
        assert all(re.fullmatch(r"[0-9a-f]{16}", row[-1]) for row in table.values()), text
    finally:
        running = False
        feeder.join(timeout=30)
        subprocess.run(["tmux", "kill-session", "-t", session], check=False)
    #   Converged: one digest on every row
    herd.wait_converged()


def test_top_fits_80_columns_and_marks_a_silent_server_without_waiting_on_it(herd):
    herd.kill("Clark")
    session, table, text = top_in_tmux(herd, 80, "narrow")
    try:
        assert set(table) == {"Bailey", "Bona", "Campbell", "Clark", "Jaquez"}, text
        assert "silent" in " ".join(table["Clark"]), text
        assert table["Bailey"][1] != "-" and table["Jaquez"][7] in ("1/2", "2/2"), text
        #   Nothing wrapped: every line is under 80 columns, so each row is one line
        assert all(len(line) < 80 for line in text.splitlines()), text
        #   One frame a second, even with a server silent: the clock moves on
        clocks = set()
        for _ in range(4):
            clocks.add(re.search(r"herd top  (\d\d:\d\d:\d\d)", screen(session)).group(1))
            time.sleep(1)
        assert len(clocks) >= 3, clocks
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False)


def test_top_never_wraps_between_the_narrow_and_the_wide_layout(herd):
    """Terminals of 106 to 120 columns: each row fits on its line, the
    wide layout only where it fits (it wrapped at 106-111 columns)."""
    for columns in (106, 111, 112, 113, 120):
        session, table, text = top_in_tmux(herd, columns, str(columns))
        try:
            assert set(table) == {"Bailey", "Bona", "Campbell", "Clark", "Jaquez"}, (columns, text)
            assert all(len(line) < columns for line in text.splitlines()), (columns, text)
            #   A wrapped row would leave its digest alone on the next line
            assert all(len(fields) > 3 for fields in (line.split() for line in text.splitlines())
                       if fields and re.fullmatch(r"[0-9a-f]{16}", fields[0])), (columns, text)
        finally:
            subprocess.run(["tmux", "kill-session", "-t", session], check=False)
