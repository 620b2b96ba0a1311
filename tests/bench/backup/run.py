"""Benchmark (not gating): what the backup engine sends to its restic repository for an incremental backup.

Two ways to feed restic (0.14 here, 0.18 on Debian 13) from an RBD snapshot, measured in the same run on the
test-bed Ceph cluster, same image, same change (docs/backup.md says which one hospital.cloud uses and why):
- "full": `rbd export IMG@SNAP - | restic backup --stdin` every time. restic's content-defined chunking finds the
  chunks it already has; each backup is a whole image in the repository (restore = one `restic dump`; retention
  = `restic forget`, any snapshot may go).
- "diff": `rbd export-diff [--from-snap PREV] IMG@SNAP - | restic backup --stdin`: only the changed extents are
  read from Ceph; a restore replays the chain (full + every diff after it), so retention must keep chains.
Figures: bytes read from Ceph, bytes restic added to the repository (its own `data_added`), seconds.
Run: .venv/bin/python tests/bench/backup/run.py [--image-mib 512 --used-mib 256 --change-mib 4]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(TESTS))

from testbed import ceph as testceph  # noqa: E402  pylint: disable=wrong-import-position

MIB = 1024 * 1024
POOL = "hc-bench-backup"


def rbd_cmd(c, *args):
    return ["rbd", "--conf", c.conf, "--keyring", c.keyring, "--id", c.client.split(".", 1)[1], *args]


def backup(c, repo: Path, env: dict, export: list[str], name: str) -> dict:
    """One export piped into restic; the stream's length counted on the way (what was read from Ceph)."""
    t0 = time.perf_counter()
    exp = subprocess.Popen(rbd_cmd(c, *export, "-"), stdout=subprocess.PIPE)
    res = subprocess.Popen(["restic", "-r", str(repo), "backup", "--json", "--stdin", "--stdin-filename", name],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    read = 0
    while chunk := exp.stdout.read(MIB):
        read += len(chunk)
        res.stdin.write(chunk)
    res.stdin.close()
    out = res.stdout.read().decode()
    assert exp.wait() == 0 and res.wait() == 0, out
    summary = [json.loads(line) for line in out.splitlines() if '"message_type":"summary"' in line][-1]
    return {"read_from_ceph": read, "added_to_repo": summary["data_added"], "seconds": time.perf_counter() - t0}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--image-mib", type=int, default=512)
    ap.add_argument("--used-mib", type=int, default=256)
    ap.add_argument("--change-mib", type=int, default=4)
    a = ap.parse_args()
    import rbd  # pylint: disable=import-outside-toplevel

    c = testceph.start(osds=3, osd_gib=4)
    work = Path(tempfile.mkdtemp(prefix="hc-bench-backup-"))
    try:
        c.cli("osd", "pool", "create", POOL, "8")
        c.cli("osd", "pool", "application", "enable", POOL, "rbd")
        cluster = c.rados()
        ioctx = cluster.open_ioctx(POOL)
        rbd.RBD().create(ioctx, "img", a.image_mib * MIB)
        with rbd.Image(ioctx, "img") as img:
            for off in range(0, a.used_mib * MIB, 4 * MIB):
                img.write(os.urandom(4 * MIB), off)
            img.create_snap("s1")
            img.write(os.urandom(a.change_mib * MIB), (a.used_mib // 3) * MIB + 12345)
            img.create_snap("s2")
        ioctx.close()
        pw = work / "pw"
        pw.write_text("bench-only-password\n")
        env = dict(os.environ, RESTIC_PASSWORD_FILE=str(pw), RESTIC_CACHE_DIR=str(work / "cache"))
        figures = {}
        for way in ("full", "diff"):
            repo = work / way
            subprocess.run(["restic", "-r", str(repo), "init"], env=env, check=True, capture_output=True)
            if way == "full":
                first = backup(c, repo, env, ["export", POOL + "/img@s1"], "img.raw")
                second = backup(c, repo, env, ["export", POOL + "/img@s2"], "img.raw")
            else:
                first = backup(c, repo, env, ["export-diff", POOL + "/img@s1"], "img.s1.diff")
                second = backup(c, repo, env, ["export-diff", "--from-snap", "s1", POOL + "/img@s2"], "img.s2.diff")
            figures[way] = {"first": first, "second": second}
        print("image %d MiB, %d MiB used, %d MiB changed between the two backups"
              % (a.image_mib, a.used_mib, a.change_mib))
        print("%-5s %-7s %14s %14s %9s" % ("way", "backup", "read MiB", "added MiB", "seconds"))
        for way, runs in figures.items():
            for which, f in runs.items():
                print("%-5s %-7s %14.1f %14.1f %9.1f"
                      % (way, which, f["read_from_ceph"] / MIB, f["added_to_repo"] / MIB, f["seconds"]))
        full, diff = figures["full"]["second"], figures["diff"]["second"]
        print("second backup, full/diff ratios: read %.1fx, added %.2fx, time %.1fx"
              % (full["read_from_ceph"] / diff["read_from_ceph"], full["added_to_repo"] / diff["added_to_repo"],
                 full["seconds"] / diff["seconds"]))
        print("second backup added / changed: full %.2f, diff %.2f"
              % (full["added_to_repo"] / (a.change_mib * MIB), diff["added_to_repo"] / (a.change_mib * MIB)))
        print(json.dumps(figures))
        return 0
    finally:
        testceph.stop(c)
        subprocess.run(["rm", "-rf", str(work)], check=False)


if __name__ == "__main__":
    sys.exit(main())
