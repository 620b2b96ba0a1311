"""The backup engine's decisions (roles/backup/files/hc_backup.py): full or diff, what a restore needs, what the
cluster and the repository may drop."""

from __future__ import annotations

import datetime
import json
import importlib.util
from pathlib import Path

import pytest

SPEC = importlib.util.spec_from_file_location(
    "hc_backup", Path(__file__).resolve().parents[3] / "roles" / "backup" / "files" / "hc_backup.py")
hc = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(hc)

T0 = datetime.datetime(2026, 12, 5, 6, 0, tzinfo=datetime.timezone.utc)


def point(pid, kind, hours, base_hours=None):
    snap = hc.snap_name(T0 + datetime.timedelta(hours=hours))
    tags = [hc.TAG, "image=vms/a", "kind=" + kind, "snap=" + snap]
    if base_hours is not None:
        tags.append("base=" + hc.snap_name(T0 + datetime.timedelta(hours=base_hours)))
    return {"id": pid, "short_id": pid[:8], "time": "t", "tags": tags}


SNAPSHOTS = [point("f0", "full", 0), point("d1", "diff", 1, 0), point("d2", "diff", 2, 0),
             point("f3", "full", 3), point("d4", "diff", 4, 3),
             # another image and a foreign restic snapshot are not this image's restore points
             dict(point("x", "full", 5), tags=[hc.TAG, "image=vms/b", "kind=full", "snap=" + hc.snap_name(T0)]),
             {"id": "y", "time": "t", "tags": ["manual"]}]


def test_restore_points_are_this_images_in_time_order():
    points = hc.restore_points(list(reversed(SNAPSHOTS)), "vms/a")
    assert [p["id"] for p in points] == ["f0", "d1", "d2", "f3", "d4"]
    assert points[4]["base"] == hc.snap_name(T0 + datetime.timedelta(hours=3))


@pytest.mark.parametrize("cluster_hours,now_hours,full_every,want", [
    ([3, 4], 5, 168, ("diff", 3)),      # the newest full's snapshot is on the cluster, young enough
    ([4], 5, 168, ("full", None)),      # its snapshot is gone (e.g. the image was restored over)
    ([3, 4], 3 + 168, 168, ("full", None)),  # a week old: a new full
    ([], 0, 168, ("full", None)),
])
def test_full_or_diff(cluster_hours, now_hours, full_every, want):
    points = hc.restore_points(SNAPSHOTS, "vms/a") if cluster_hours else []
    snaps = [hc.snap_name(T0 + datetime.timedelta(hours=h)) for h in cluster_hours]
    kind, base = hc.choose_kind(points, snaps, T0 + datetime.timedelta(hours=now_hours), full_every)
    assert (kind, base) == (want[0], hc.snap_name(T0 + datetime.timedelta(hours=want[1])) if want[1] else None)


def test_a_diff_restores_with_its_full_only():
    points = hc.restore_points(SNAPSHOTS, "vms/a")
    assert [p["id"] for p in hc.chain_of(points, points[2])] == ["f0", "d2"]
    assert [p["id"] for p in hc.chain_of(points, points[3])] == ["f3"]
    with pytest.raises(hc.BackupError, match="no longer holds"):
        hc.chain_of(points[1:], points[2])


def test_cluster_keeps_the_newest_full_and_the_latest_snapshot():
    points = hc.restore_points(SNAPSHOTS, "vms/a")
    on_cluster = [p["snap"] for p in points] + ["hcbk-20261205T120000Z", "operator-snapshot"]
    # the last one has no restore point (a killed run): it goes; the operator's own snapshot stays
    assert hc.cluster_snaps_to_remove(on_cluster, points) == [p["snap"] for p in points[:3]] + [
        "hcbk-20261205T120000Z"]


def test_kept_diffs_keep_their_full():
    points = hc.restore_points(SNAPSHOTS, "vms/a")
    assert hc.fulls_needed(points, {"d2", "d4"}) == {"f0", "f3"}
    assert hc.fulls_needed(points, {"f3"}) == set()


def test_retention_arguments():
    want = ["--keep-hourly", "24", "--keep-daily", "14"]
    assert hc.retention_args({"hourly": 24, "daily": 14, "weekly": 0}) == want
    for bad, text in (({"hourly": 0}, "keeps nothing"), ({"daily": -1}, "0 or more")):
        with pytest.raises(hc.BadInput, match=text):
            hc.retention_args(bad)


FROZEN = {"consistency": "filesystem", "freeze": {"result": "frozen", "msg": ""}}
NO_AGENT = {"consistency": "crash", "freeze": {"result": "no-agent", "msg": "QEMU guest agent is not configured"}}
STOPPED = {"consistency": "stopped", "freeze": {"result": "not-running", "msg": "db-1 runs on none of []"}}


@pytest.mark.parametrize("consistency,want", [
    (FROZEN, {"consistency_required": "filesystem"}),
    (STOPPED, {"consistency_required": "filesystem"}),
    (NO_AGENT, {"consistency_required": "filesystem", "warning": "only crash-consistent: the guest's filesystems"
                " were not frozen (no-agent: QEMU guest agent is not configured)"}),
])
def test_a_vm_that_needs_the_freeze_is_told_when_it_missed_it(consistency, want):
    engine = hc.Engine.__new__(hc.Engine)
    engine.images = {"vms/db-1-root": {"image": "vms/db-1-root", "vm": "db-1", "consistency": "filesystem"},
                     "vms/pacs-1-root": {"image": "vms/pacs-1-root", "vm": "pacs-1"}}
    assert engine.consistency_required("vms/db-1-root", consistency) == want
    assert engine.consistency_required("vms/pacs-1-root", NO_AGENT) == {}


def test_metrics_say_which_backups_were_only_crash_consistent(tmp_path):
    images = [dict({"image": "vms/db-1-root", "ok": True, "consistency_required": "filesystem"}, **NO_AGENT),
              dict({"image": "vms/ris-1-root", "ok": True, "consistency_required": "filesystem"}, **STOPPED),
              dict({"image": "vms/pacs-1-root", "ok": True}, **FROZEN),
              dict({"image": "vms/lab-1-root", "ok": True}, **NO_AGENT),
              # no freeze configured and none required (an extra image, or backup_fsfreeze false): no such metric
              {"image": "vms/golden", "ok": True, "consistency": "crash", "freeze": {"result": "off"}}]
    (tmp_path / "last-backup.json").write_text(json.dumps({"time": T0.isoformat(), "images": images}))
    hc.write_metrics(str(tmp_path), str(tmp_path / "hc_backup.prom"))
    lines = [line for line in (tmp_path / "hc_backup.prom").read_text().splitlines()
             if line.startswith("hc_backup_last_filesystem_consistent{")]
    assert lines == ['hc_backup_last_filesystem_consistent{image="vms/db-1-root",required="true"} 0',
                     'hc_backup_last_filesystem_consistent{image="vms/ris-1-root",required="true"} 1',
                     'hc_backup_last_filesystem_consistent{image="vms/pacs-1-root",required="false"} 1',
                     'hc_backup_last_filesystem_consistent{image="vms/lab-1-root",required="false"} 0']
