"""Two test-bed Ceph clusters (site A, site B) on 127.0.0.1 and one rbd-mirror daemon for each.

Both clusters are this tier's own (not the session ``ceph_cluster``): the unplanned failover freezes
every daemon of site A (SIGSTOP by recorded PID, SIGCONT to bring it back), which the other Ceph
tests must never see. The rbd-mirror daemons run in the foreground, their PIDs are recorded in the
cluster's directory (so that ``testbed.ceph.stop`` ends them with the cluster) and they are stopped
by those PIDs. Figures of the run are collected in ``FIGURES`` and printed as ``DR FIGURES {json}``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lab import procs

FIGURES: dict = {}
REPO = Path(__file__).resolve().parents[3]


@dataclass
class Site:
    """One site: its test-bed cluster and its rbd-mirror daemon."""

    name: str
    cluster: object  # testbed.ceph.CephCluster
    mirror_pid: int | None = None
    frozen: list = field(default_factory=list)
    _proc: subprocess.Popen | None = None

    @property
    def conn(self) -> dict:
        return {"conf": self.cluster.conf, "keyring": self.cluster.keyring, "client": self.cluster.client,
                "connect_timeout": 10}

    def start_mirror(self) -> int:
        """Start rbd-mirror in the foreground as client.rbd-mirror.<site> (PID kept)."""
        c = self.cluster
        user = "client.rbd-mirror.%s" % self.name
        keyring = c.root / "keyring" / ("ceph.%s.keyring" % user)  # the path ceph.conf's keyring names
        if not keyring.exists():
            c.cli("auth", "get-or-create", user, "mon", "profile rbd-mirror", "osd", "profile rbd",
                  "-o", str(keyring))
        log = open(c.root / "log" / "rbd-mirror.out", "ab")  # pylint: disable=consider-using-with
        # CEPH_CONF too: rbd-mirror opens its own connection to the local cluster from the default
        # configuration search path, not from --conf
        p = subprocess.Popen(  # pylint: disable=consider-using-with
            ["rbd-mirror", "-f", "--conf", c.conf, "--id", "rbd-mirror.%s" % self.name],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            env=dict(os.environ, CEPH_CONF=c.conf))
        log.close()
        (c.root / "pids").mkdir(exist_ok=True)
        (c.root / "pids" / "rbd-mirror").write_text(str(p.pid))
        self.mirror_pid = p.pid
        self._proc = p
        return p.pid

    def stop_mirror(self) -> None:
        pid, self.mirror_pid = self.mirror_pid, None
        if pid and procs.owns(pid, self.cluster.root):
            os.kill(pid, signal.SIGTERM)
            try:
                self._proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(pid, signal.SIGKILL)
                self._proc.wait(timeout=10)
        (self.cluster.root / "pids" / "rbd-mirror").unlink(missing_ok=True)

    def daemons(self) -> list[int]:
        return [pid for pid in procs.recorded(self.cluster.root).values() if procs.owns(pid, self.cluster.root)]

    def freeze(self) -> list[int]:
        """Make the whole site unreachable (every daemon of it stopped with SIGSTOP)."""
        pids = self.daemons()
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        self.frozen = pids
        return pids

    def thaw(self) -> None:
        for pid in getattr(self, "frozen", []):
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        self.frozen = []

    def image(self, pool: str, image: str, read_only: bool = True):
        """(rados handle, ioctx, rbd.Image) -- caller closes via close_image."""
        import rbd  # pylint: disable=import-outside-toplevel

        r = self.cluster.rados()
        io = r.open_ioctx(pool)
        try:
            return r, io, rbd.Image(io, image, read_only=read_only)
        except Exception:
            io.close()
            r.shutdown()
            raise

    def read(self, pool: str, image: str, offset: int, length: int) -> bytes:
        r, io, img = self.image(pool, image)
        try:
            return img.read(offset, length)
        finally:
            img.close()
            io.close()
            r.shutdown()

    def write(self, pool: str, image: str, offset: int, data: bytes) -> None:
        r, io, img = self.image(pool, image, read_only=False)
        try:
            img.write(data, offset)
            img.flush()
        finally:
            img.close()
            io.close()
            r.shutdown()


@pytest.fixture(scope="session")
def figures() -> dict:
    """The figures of the run (printed as DR FIGURES at the end)."""
    return FIGURES


@pytest.fixture(scope="module")
def sites():
    """(site A, site B): two fresh clusters, each with its rbd-mirror daemon started by the test."""
    from testbed import ceph  # pylint: disable=import-outside-toplevel

    t0 = time.monotonic()
    made = []
    try:
        for name in ("site-a", "site-b"):
            made.append(Site(name, ceph.start(osds=3, osd_gib=4)))
        FIGURES["clusters_start_s"] = round(time.monotonic() - t0, 1)
        yield made[0], made[1]
    finally:
        for site in made:
            site.thaw()
            site.stop_mirror()
            ceph.stop(site.cluster, remove=not os.environ.get("HC_KEEP_CEPH"))
        if FIGURES:
            out = REPO / ".cache" / "dr"
            out.mkdir(parents=True, exist_ok=True)
            (out / "dr-figures.json").write_text(json.dumps(FIGURES, indent=1, sort_keys=True))


def pytest_terminal_summary(terminalreporter):
    if FIGURES:
        terminalreporter.write_sep("-", "disaster recovery figures")
        terminalreporter.write_line("DR FIGURES %s" % json.dumps(FIGURES, sort_keys=True))
