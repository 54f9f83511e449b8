"""A backup of a running server is a copy of its journal: taken under
load, it holds every update acknowledged before the copy began (a record
being written as it was copied is torn at the end, reported and skipped
when replayed), and a server started on it serves them all."""

import os
import shutil
import time

from conftest import BackgroundIamats


def test_a_journal_copied_under_load_restores_what_was_acknowledged(make_herd, tmp_path):
    herd = make_herd(graph={"Bailey": []})
    traffic = BackgroundIamats(herd, "Bailey", "backup", batch=100)
    try:
        deadline = time.monotonic() + 60
        while len(traffic.acknowledged) < 5000 and time.monotonic() < deadline:
            time.sleep(0.05)
        before_copy = list(traffic.acknowledged)
        assert len(before_copy) >= 5000
        copy = tmp_path / "Bailey.journal.backup"
        shutil.copyfile(os.path.join(herd.folder, "state", "Bailey.journal"), copy)
    finally:
        traffic.stop()
    #   Restore: a new server of the same name on the copy
    restored = make_herd(graph={"Bailey": []}, start=False)
    os.makedirs(os.path.join(restored.folder, "state"), exist_ok=True)
    shutil.copyfile(copy, os.path.join(restored.folder, "state", "Bailey.journal"))
    restored.start()
    assert restored.state("Bailey")["clients"] >= len(before_copy)
    for client in (before_copy[0], before_copy[len(before_copy) // 2], before_copy[-1]):
        assert restored.stored_line("Bailey", client) is not None, client
