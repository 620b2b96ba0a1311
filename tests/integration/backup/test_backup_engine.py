"""The backup engine (roles/backup/files/hc_backup.py) against the real test-bed Ceph cluster and restic.

The engine runs as it does on a backup host, a process of its own with its JSON configuration; the repository is
a directory here (on real hardware a disk of the backup host, or a restic REST/SFTP server), never the cluster.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ceph, pytest.mark.timeout(600)]

rbd = pytest.importorskip("rbd", reason="python3-rbd comes with the Debian packages (make deps)")
ENGINE = Path(__file__).resolve().parents[3] / "roles" / "backup" / "files" / "hc_backup.py"
POOL = "hc-bk"
MIB = 1024 * 1024
MARKERS = {"pacs": b"hc-marker-pacs-" + os.urandom(8).hex().encode(),
           "pacs-2": b"hc-marker-pacs-second-" + os.urandom(8).hex().encode()}
PASSWORD = "hc-test-" + os.urandom(12).hex()
FIGURES: dict = {}


class Bk:
    def __init__(self, cluster, tmp: Path):
        self.cluster = cluster
        self.tmp = tmp
        self.repo = tmp / "repo"
        self.config = tmp / "backup.json"
        self.textfile = tmp / "textfile" / "hc_backup.prom"
        self.state = tmp / "state"
        self.handle = cluster.rados()
        self.ioctx = self.handle.open_ioctx(POOL)

    def write_config(self, **over) -> None:
        conf = {"ceph": {"conf": self.cluster.conf, "keyring": self.cluster.keyring,
                         "id": self.cluster.client.split(".", 1)[1]},
                "repository": str(self.repo), "password_file": str(self.tmp / "password"),
                "state_dir": str(self.state), "textfile": str(self.textfile), "hostname": "backup-test",
                "images": [{"image": POOL + "/pacs-root", "vm": "pacs"}, {"image": POOL + "/ris-root", "vm": "ris"},
                           {"image": POOL + "/big-root", "vm": "big"}],
                "full_every_hours": 168, "retention": {"hourly": 24, "daily": 14, "weekly": 8}, "prune": False}
        conf.update(over)
        self.config.write_text(json.dumps(conf))

    def run(self, *args: str, check: bool = True) -> tuple[int, dict, str]:
        res = subprocess.run([sys.executable, str(ENGINE), "--config", str(self.config), *args],
                             capture_output=True, text=True, timeout=600, check=False)
        out = json.loads(res.stdout) if res.stdout.strip() else {}
        if check:
            assert res.returncode == 0, (res.returncode, res.stdout[-2000:], res.stderr[-2000:])
        return res.returncode, out, res.stdout + res.stderr

    def write(self, image: str, data: bytes, offset: int) -> None:
        with rbd.Image(self.ioctx, image) as img:
            img.write(data, offset)

    def read(self, image: str, offset: int, length: int) -> bytes:
        with rbd.Image(self.ioctx, image, read_only=True) as img:
            return img.read(offset, length)

    def sha256(self, image: str, snap: str | None = None) -> str:
        digest = hashlib.sha256()
        with rbd.Image(self.ioctx, image, snapshot=snap, read_only=True) as img:
            for off in range(0, img.size(), 4 * MIB):
                digest.update(img.read(off, min(4 * MIB, img.size() - off)))
        return digest.hexdigest()

    def images(self) -> list[str]:
        return sorted(rbd.RBD().list(self.ioctx))

    def snaps(self, image: str) -> list[str]:
        with rbd.Image(self.ioctx, image, read_only=True) as img:
            return [s["name"] for s in img.list_snaps()]

    def points(self, vm: str) -> list[dict]:
        return self.run("list", "--vm", vm)[1]["images"]["%s/%s-root" % (POOL, vm)]


@pytest.fixture(scope="module")
def bk(ceph_cluster, tmp_path_factory):
    ceph_cluster.cli("osd", "pool", "create", POOL, "8")
    ceph_cluster.cli("osd", "pool", "application", "enable", POOL, "rbd")
    b = Bk(ceph_cluster, tmp_path_factory.mktemp("backup"))
    for name, size, used in (("pacs-root", 128, 64), ("ris-root", 16, 8), ("big-root", 256, 256)):
        rbd.RBD().create(b.ioctx, name, size * MIB)
        for off in range(0, used * MIB, 4 * MIB):
            b.write(name, os.urandom(4 * MIB), off)
    b.write("pacs-root", MARKERS["pacs"], 100 * MIB)
    (b.tmp / "password").write_text(PASSWORD + "\n")
    os.chmod(b.tmp / "password", 0o600)
    subprocess.run(["restic", "-r", str(b.repo), "init"], env=dict(os.environ, RESTIC_PASSWORD_FILE=str(
        b.tmp / "password")), check=True, capture_output=True)
    b.write_config()
    yield b
    print("BACKUP FIGURES %s" % json.dumps(FIGURES, sort_keys=True))
    b.ioctx.close()
    b.handle.shutdown()
    ceph_cluster.settle()  # the next tests compare reads around a module run


def by_image(result: dict) -> dict:
    return {r["image"].split("/", 1)[1]: r for r in result["images"]}


def test_second_backup_stores_about_the_change(bk):
    first = by_image(bk.run("backup", "--vm", "pacs")[1])["pacs-root"]
    assert first["kind"] == "full" and first["ok"]
    bk.write("pacs-root", os.urandom(4 * MIB), 20 * MIB + 4096)
    bk.write("pacs-root", MARKERS["pacs-2"], 110 * MIB)
    second = by_image(bk.run("backup", "--vm", "pacs")[1])["pacs-root"]
    assert second["kind"] == "diff" and second["base"] == first["snap"]
    FIGURES.update(first_added_mib=round(first["added_bytes"] / MIB, 2), second_added_mib=round(
        second["added_bytes"] / MIB, 2), second_read_mib=round(second["read_bytes"] / MIB, 2),
        image_mib=128, change_mib=4)
    FIGURES["second_added_per_change"] = round(second["added_bytes"] / (4 * MIB), 2)
    # about the 4 MiB written (+ metadata, + the object the marker landed in), not the 64 MiB in use
    assert 4 * MIB <= second["added_bytes"] <= 6 * MIB, second
    assert second["read_bytes"] <= 12 * MIB, second
    assert first["added_bytes"] >= 60 * MIB, first
    # on the cluster: the full's snapshot (next diffs start there) and the latest one, nothing else
    assert bk.snaps("pacs-root") == [first["snap"], second["snap"]]


def test_restore_to_a_new_image_is_the_snapshot(bk):
    latest = bk.points("pacs")[-1]
    before = bk.images()
    plan = bk.run("restore", "--vm", "pacs", "--check")[1]["restores"][0]
    assert bk.images() == before and plan["target"] not in before and plan["chain"][-1] == latest["snap"]
    done = bk.run("restore", "--vm", "pacs")[1]["restores"][0]
    target = done["target"].split("/", 1)[1]
    assert done["target"] == plan["target"] and bk.images() == sorted(before + [target])
    FIGURES["restore_s"] = done["seconds"]
    assert bk.sha256(target) == bk.sha256("pacs-root", latest["snap"])
    for name, offset in (("pacs", 100 * MIB), ("pacs-2", 110 * MIB)):
        assert bk.read(target, offset, len(MARKERS[name])) == MARKERS[name]
    assert bk.snaps(target) == []
    # the same target again: refused, nothing changed
    rc, out, dummy = bk.run("restore", "--vm", "pacs", "--target", done["target"], check=False)
    assert rc == 2 and "exists" in out["msg"] and bk.images() == sorted(before + [target])
    rbd.RBD().remove(bk.ioctx, target)
    # a target whose name is only part of an existing image's name is new, not "existing"
    short = bk.run("restore", "--vm", "pacs", "--target", POOL + "/pacs")[1]["restores"][0]
    assert short["target"] == POOL + "/pacs" and bk.sha256("pacs") == bk.sha256("pacs-root", latest["snap"])
    rbd.RBD().remove(bk.ioctx, "pacs")


def test_repository_is_encrypted_and_no_secret_is_logged(bk):
    files = [p for p in bk.repo.rglob("*") if p.is_file()]
    assert len(files) > 5
    for path in files:
        data = path.read_bytes()
        for marker in MARKERS.values():
            assert marker not in data, "plain-text marker in %s" % path
    for path in [*bk.state.rglob("*.json"), bk.textfile]:
        assert PASSWORD not in path.read_text(), path
    dummy, dummy2, text = bk.run("list", "--vm", "pacs")
    assert PASSWORD not in text


def _children(pid: int) -> list[str]:
    out = subprocess.run(["ps", "-o", "args=", "--ppid", str(pid)], capture_output=True, text=True, check=False)
    return out.stdout.splitlines()


def test_killed_backup_leaves_no_restore_point(bk):
    assert bk.points("big") == []
    proc = subprocess.Popen([sys.executable, str(ENGINE), "--config", str(bk.config), "backup", "--vm", "big"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 60
    while not any(a.startswith("restic backup") for a in _children(proc.pid)):
        assert time.monotonic() < deadline and proc.poll() is None, "no restic backup started"
        time.sleep(0.1)
    time.sleep(1.0)
    assert proc.poll() is None, "the backup ended before it could be killed: make big-root bigger"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert bk.points("big") == [], "a killed backup left a restore point"
    leftover = bk.snaps("big-root")
    assert len(leftover) == 1  # the snapshot of the killed run, no restore point refers to it
    again = by_image(bk.run("backup", "--vm", "big")[1])["big-root"]
    assert again["ok"] and again["kind"] == "full"
    assert [p["snap"] for p in bk.points("big")] == [again["snap"]] and bk.snaps("big-root") == [again["snap"]]
    FIGURES["full_256mib_s"] = again["seconds"]


def test_target_down_fails_clearly_and_next_run_catches_up(bk):
    aside = bk.repo.with_name("repo-unplugged")
    bk.repo.rename(aside)
    try:
        snaps = bk.snaps("pacs-root")
        rc, out, dummy = bk.run("backup", "--vm", "pacs", check=False)
        assert rc == 1 and out["failed"]
        result = by_image(out)["pacs-root"]
        assert not result["ok"] and "restic" in result["msg"] and "repository" in result["msg"].lower(), result
        assert bk.snaps("pacs-root") == snaps  # nothing made, nothing removed
        assert 'hc_backup_last_ok{image="hc-bk/pacs-root"} 0' in bk.textfile.read_text()
    finally:
        aside.rename(bk.repo)
    bk.write("pacs-root", b"after-the-outage", 120 * MIB)
    back = by_image(bk.run("backup", "--vm", "pacs")[1])["pacs-root"]
    assert back["ok"] and back["kind"] == "diff"
    assert 'hc_backup_last_ok{image="hc-bk/pacs-root"} 1' in bk.textfile.read_text()


def test_restore_drill(bk):
    bk.run("backup", "--vm", "ris")
    out = bk.run("verify")[1]
    assert not out["failed"] and out["repository_ok"], out
    assert all(r["ok"] and r["restored_sha256"] == r["snapshot_sha256"] for r in out["images"]), out
    FIGURES["drill_s"] = {r["image"]: r["seconds"] for r in out["images"]}
    text = bk.textfile.read_text()
    assert 'hc_backup_drill_ok{image="hc-bk/pacs-root"} 1' in text and "hc_backup_repository_ok 1" in text
    assert not [i for i in bk.images() if i.endswith("-drill")]


@pytest.mark.parametrize("args,text", [
    (["backup", "--vm", "nope"], "unknown VM 'nope'"),
    (["verify", "--vm", "nope"], "unknown VM 'nope'"),
    (["restore", "--image", "hc-bk/nope"], "unknown image 'hc-bk/nope'"),
    (["restore", "--vm", "pacs", "--point", "hcbk-19990101T000000Z"], "no restore point 'hcbk-19990101T000000Z'"),
    (["prune"], "pruning the repository is off"),
], ids=["backup-unknown-vm", "verify-unknown-vm", "restore-unknown-image", "restore-unknown-point",
        "prune-not-allowed"])
def test_bad_input_changes_nothing(bk, args, text):
    images, snaps, points = bk.images(), bk.snaps("pacs-root"), bk.points("pacs")
    rc, out, dummy = bk.run(*args, check=False)
    assert rc == 2 and out["failed"] and text in out["msg"], out
    assert (bk.images(), bk.snaps("pacs-root"), bk.points("pacs")) == (images, snaps, points)


def test_retention_of_zero_is_refused(bk):
    bk.write_config(retention={"hourly": 0, "daily": 0}, prune=True)
    try:
        points = bk.points("pacs")
        rc, out, dummy = bk.run("prune", check=False)
        assert rc == 2 and "keeps nothing" in out["msg"] and bk.points("pacs") == points
    finally:
        bk.write_config()


def test_restore_over_the_image_needs_it_closed(bk):
    latest = bk.points("pacs")[-1]
    images = bk.images()
    # an open image (a running VM's qemu holds a watch on it, as this handle does)
    with rbd.Image(bk.ioctx, "pacs-root"):
        rc, out, dummy = bk.run("restore", "--vm", "pacs", "--overwrite", check=False)
        assert rc == 2 and "stop the VM first" in out["msg"], out
    assert bk.images() == images
    bk.write("pacs-root", b"ransomware-was-here", 100 * MIB)
    done = bk.run("restore", "--vm", "pacs", "--overwrite")[1]["restores"][0]
    kept = done["replaced_image_kept_as"].split("/", 1)[1]
    assert bk.images() == sorted(images + [kept])
    assert bk.read("pacs-root", 100 * MIB, len(MARKERS["pacs"])) == MARKERS["pacs"]
    assert bk.sha256("pacs-root") == bk.sha256(kept, latest["snap"])
    assert bk.read(kept, 100 * MIB, 19) == b"ransomware-was-here"


def test_prune_keeps_the_fulls_that_kept_diffs_need(bk):
    """One restore point an hour: the hour's latest (a diff) stays, and so does the full it is a diff of."""
    bk.write_config(retention={"hourly": 1}, prune=True)
    try:
        before = bk.points("pacs")
        assert [p["kind"] for p in before] == ["full", "diff", "diff"], before
        others = bk.points("ris") + bk.points("big")
        plan = bk.run("prune", "--check")[1]
        assert plan["remove"] == [before[1]["id"]] and bk.points("pacs") == before
        bk.run("prune")
        assert bk.points("pacs") == [before[0], before[2]]
        assert bk.points("ris") + bk.points("big") == others
        target = bk.run("restore", "--vm", "pacs")[1]["restores"][0]["target"].split("/", 1)[1]
        assert bk.read(target, 110 * MIB, len(MARKERS["pacs-2"])) == MARKERS["pacs-2"]
        assert bk.read(target, 120 * MIB, 16) == b"after-the-outage"
        assert bk.run("prune", "--check")[1]["remove"] == []
    finally:
        bk.write_config()
