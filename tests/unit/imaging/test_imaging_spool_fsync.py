"""Spool durability (``fsync``): every output, the sidecar and their directory entries are on disk
before a job's result can reach the controller (and so before its acknowledgement); a submission is
on disk before ``submit`` returns. Power loss cannot be simulated here: the test records the system
calls (the boundary to the kernel) and checks their order, then that the files are complete."""

import json
import os
import subprocess
import sys

import pytest

from hospital_imaging import pipeline as P
from hospital_imaging import worker as W
from hospital_imaging.sources import open_source
from hospital_imaging.sources import spool as S
from hospital_imaging.synthetic import phantom, png_bytes
from imaging_ids import jid

PIPE = P.load("name: edges\nsteps: [read, grey, canny, {write: {outputs: [edges, image]}}]\n")


@pytest.fixture(name="calls")
def fixture_calls(monkeypatch):
    """[(call, path)] of os.fsync (the path of the fd), os.replace and os.rename in the spool module."""
    calls = []
    fsync, replace, rename = os.fsync, os.replace, os.rename

    def record_fsync(fd):
        calls.append(("fsync", os.readlink("/proc/self/fd/%d" % fd)))
        fsync(fd)

    def record_replace(src, dst):
        calls.append(("replace", str(dst)))
        replace(src, dst)

    def record_rename(src, dst):
        calls.append(("rename", str(dst)))
        rename(src, dst)
    monkeypatch.setattr(S.os, "fsync", record_fsync)
    monkeypatch.setattr(S.os, "replace", record_replace)
    monkeypatch.setattr(S.os, "rename", record_rename)
    return calls


def _process(root, fsync, calls):
    spool = S.SpoolSource(str(root), worker_id="unit", fsync=fsync)
    try:
        spool.submit(jid("a.png"), png_bytes(phantom(128, 16, seed=1)))
        submitted = list(calls)
        del calls[:]
        claims = spool.claim(1)
        results = W.process_tasks(spool.spec(), PIPE.to_dict(), [(c.job, c.locator) for c in claims])
        assert [r["status"] for r in results] == ["ok"]
        processed = list(calls)  # everything the pool task did before its result came back
        spool.ack(claims[0], {})
    finally:
        spool.close()
    return submitted, processed


def test_with_fsync_every_output_and_its_directory_are_on_disk_before_the_result(tmp_path, calls):
    root = tmp_path / "spool"
    submitted, processed = _process(root, True, calls)
    inbox, outbox = str(root / "inbox"), str(root / "outbox")
    # the submission: its data, then its rename, then inbox/ itself
    assert [c[0] for c in submitted] == ["fsync", "replace", "fsync"], submitted
    assert submitted[0][1].startswith(str(root / "tmp")) and submitted[1][1] == inbox + "/" + jid("a.png")
    assert submitted[2] == ("fsync", inbox)
    # the job: each file's data before its rename, the sidecar's rename last, then outbox/ itself
    names = [jid("a.png") + s for s in (".edges.png", ".image.png", ".json")]
    writes = [c for c in processed if c[1].startswith((str(root / "tmp"), outbox))]
    assert [c[0] for c in writes] == ["fsync", "replace"] * 3 + ["fsync"], processed
    assert sorted(os.path.basename(c[1]) for c in writes[1:6:2]) == sorted(names)
    assert writes[5][1] == outbox + "/" + jid("a.png") + ".json"  # the sidecar commits the set: written last
    assert writes[-1] == ("fsync", outbox)
    for name in names:
        assert os.path.getsize(os.path.join(outbox, name)) > 0
    with open(os.path.join(outbox, jid("a.png") + ".json"), "rb") as handle:
        assert json.loads(handle.read())["job"] == jid("a.png")
    assert os.listdir(root / "done") == [jid("a.png")] and os.listdir(root / "tmp") == []


def test_without_fsync_nothing_is_synced(tmp_path, calls):
    root = tmp_path / "spool"
    submitted, processed = _process(root, False, calls)
    assert not [c for c in submitted + processed if c[0] == "fsync"]
    assert len([c for c in processed if c[0] == "replace" and c[1].startswith(str(root / "outbox"))]) == 3


def test_open_source_passes_fsync_to_the_spool_only(tmp_path):
    spool = open_source("spool:%s" % (tmp_path / "s"), worker_id="unit", fsync=True, conffile="x", lease=3.0)
    assert spool.spec()["fsync"] is True
    spool.close()
    assert open_source(str(tmp_path / "t"), worker_id="unit").spec()["fsync"] is False


def test_cli_fsync_from_the_config_file_and_a_clear_error_for_a_non_boolean(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    root = tmp_path / "spool"
    image = tmp_path / "x.png"
    image.write_bytes(png_bytes(phantom(64, 8, seed=1)))
    base = [sys.executable, "-m", "hospital_imaging"]
    config = tmp_path / "worker.yml"
    config.write_text("fsync: 'yes'\nsource: spool:%s\n" % root)
    run = subprocess.run(base + ["submit", "--config", str(config), str(image)], capture_output=True, text=True,
                         env=env, check=False)
    assert run.returncode == 2 and "fsync must be true or false (got 'yes')" in run.stderr, run.stderr
    assert "Traceback" not in run.stderr and not root.exists()  # nothing created
    config.write_text("fsync: true\nsource: spool:%s\n" % root)
    run = subprocess.run(base + ["submit", "--config", str(config), str(image)], capture_output=True, text=True,
                         env=env, check=False)
    assert run.returncode == 0, run.stderr
    run = subprocess.run(base + ["process", "--config", str(config), "--metrics-port", "0", "--log-level", "info"],
                         capture_output=True, text=True, env=env, check=False)
    assert run.returncode == 0, run.stderr
    started = [json.loads(line) for line in run.stderr.splitlines() if '"worker_started"' in line]
    assert started and started[0]["fsync"] is True
    assert len(os.listdir(root / "done")) == 1
