"""Spool retention: one entry that cannot be deleted does not stop the purge of the others."""

import os
import time

from hospital_imaging.sources.spool import SpoolSource


def test_an_undeletable_entry_is_counted_and_the_purge_goes_on(tmp_path):
    spool = SpoolSource(str(tmp_path / "spool"), worker_id="unit")
    try:
        old = time.time() - 40 * 86400
        for name in ("a", "z"):
            path = os.path.join(spool.root, "done", name)
            with open(path, "wb") as handle:
                handle.write(b"x")
            os.utime(path, (old, old))
        directory = os.path.join(spool.root, "done", "m")  # a directory that was submitted and acknowledged
        os.mkdir(directory)
        os.utime(directory, (old, old))
        assert spool.purge(30 * 86400) == {"done": 2, "failed": 0, "errors": 1}
        assert os.listdir(os.path.join(spool.root, "done")) == ["m"]
    finally:
        spool.close()
