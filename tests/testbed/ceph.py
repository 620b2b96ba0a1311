"""A real single-host Ceph cluster for the tests: 1 mon, 1 mgr, 3 BlueStore OSDs on sparse files.

Everything lives in one temporary directory, listens on 127.0.0.1 with ports picked free at start,
runs as foreground processes started here (PIDs kept) and is torn down by those PIDs. A run that
died without tearing down is reaped at the next start: its directory records its PIDs, which are
stopped only if they still run a Ceph daemon whose command line names that directory.

Usable on its own: ``python -m testbed.ceph up DIR`` / ``down DIR`` (from tests/).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from lab import procs

BASE = Path(os.environ.get("HC_TESTBED_DIR", "/tmp/hospital-cloud-testbed"))
REQUIRED = ("ceph-mon", "ceph-mgr", "ceph-osd", "ceph", "ceph-authtool", "monmaptool")


class CephError(RuntimeError):
    """The test-bed cluster could not be built or queried."""


def free_ports(n: int) -> list[int]:
    """Return n distinct TCP ports that are free on 127.0.0.1 right now."""
    socks, ports = [], []
    try:
        for dummy in range(n):  # noqa: B007
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


CONF = """\
[global]
fsid = {fsid}
mon host = [v2:127.0.0.1:{p2},v1:127.0.0.1:{p1}]
mon initial members = a
public network = 127.0.0.0/8
ms bind ipv6 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
run dir = {d}/run
admin socket = {d}/run/$cluster-$name.asok
log file = {d}/log/$cluster-$name.log
mon data = {d}/mon/$cluster-$id
mgr data = {d}/mgr/$cluster-$id
osd data = {d}/osd/$cluster-$id
keyring = {d}/keyring/$cluster.$name.keyring
osd crush chooseleaf type = 0
osd pool default size = 3
osd pool default min size = 2
mon allow pool size one = true
mon warn on pool no redundancy = false
mon warn on insecure global id reclaim allowed = false
auth allow insecure global id reclaim = false
mon data avail warn = 2
mon data avail crit = 1
osd objectstore = bluestore
bluestore block create = true
bluestore block size = {osd_bytes}
bluestore cache autotune = false
bluestore cache size = 64M
osd op num threads per shard = 1
mgr initial modules = iostat
# commit monitor changes quickly: pool-changing commands wait for the next paxos proposal
paxos propose interval = 0.1
client mount timeout = 15
rados mon op timeout = 15
rados osd op timeout = 30
"""


@dataclass
class CephCluster:
    """Handle on a running test-bed cluster (what tests use)."""

    root: Path
    fsid: str = ""
    mon_port: int = 0
    procs: dict = field(default_factory=dict)
    cluster: str = "ceph"
    client: str = "client.admin"

    @property
    def conf(self) -> str:
        return str(self.root / "ceph.conf")

    @property
    def keyring(self) -> str:
        return str(self.root / "keyring" / "ceph.client.admin.keyring")

    @property
    def mon_host(self) -> str:
        return "127.0.0.1:%d" % self.mon_port

    def cli(self, *args: str, timeout: float = 60, check: bool = True) -> str:
        """Run the `ceph` CLI against this cluster and return stdout."""
        cmd = ["ceph", "--conf", self.conf, "--keyring", self.keyring, "--name", self.client,
               "--connect-timeout", "15", *args]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        if check and res.returncode != 0:
            raise CephError("%s failed (rc=%d): %s" % (" ".join(cmd), res.returncode, res.stderr.strip()))
        return res.stdout

    def cli_json(self, *args: str, **kw):
        return json.loads(self.cli(*args, "--format", "json", **kw) or "null")

    def rados(self):
        """A connected rados.Rados handle (caller calls .shutdown())."""
        import rados  # pylint: disable=import-outside-toplevel

        r = rados.Rados(conffile=self.conf, name=self.client,
                        conf={"keyring": self.keyring, "client_mount_timeout": "15",
                              "rados_mon_op_timeout": "15"})
        r.connect(timeout=15)
        return r

    def health(self) -> str:
        return self.cli_json("health")["status"]

    def settle(self, quiet_s: float = 10, timeout: float = 120) -> None:
        """Wait until the OSD map epoch holds still for ``quiet_s``: after snapshots or pools were removed the
        monitors record them as purged in new epochs for a while, and tests that compare reads around a module
        run (test_ceph_info) must not see that."""
        deadline, last, since = time.monotonic() + timeout, None, time.monotonic()
        while time.monotonic() < deadline:
            epoch = self.cli_json("osd", "dump")["epoch"]
            if epoch != last:
                last, since = epoch, time.monotonic()
            elif time.monotonic() - since >= quiet_s:
                return
            time.sleep(2)

    def wait_health_ok(self, timeout: float = 120, osds: int = 0) -> float:
        """Wait until HEALTH_OK with `osds` OSDs up and in; return the seconds waited."""
        t0 = time.monotonic()
        last = ""
        while time.monotonic() - t0 < timeout:
            try:
                st = self.cli_json("status", timeout=30)
                om = st["osdmap"].get("osdmap", st["osdmap"])
                last = "%s, %s/%s OSDs up/in: %s" % (
                    st["health"]["status"], om["num_up_osds"], om["num_in_osds"],
                    json.dumps(st["health"].get("checks", {}))[:400])
                if (st["health"]["status"] == "HEALTH_OK" and om["num_up_osds"] >= osds
                        and om["num_in_osds"] >= osds and st["mgrmap"].get("available")):
                    return time.monotonic() - t0
            except (CephError, subprocess.TimeoutExpired, ValueError) as exc:
                last = str(exc)
            time.sleep(1)
        raise CephError("cluster in %s not HEALTH_OK after %ds: %s" % (self.root, timeout, last))


def _run(cmd: list[str], **kw) -> str:
    res = subprocess.run(cmd, capture_output=True, text=True, check=False, **kw)
    if res.returncode != 0:
        raise CephError("%s failed (rc=%d): %s" % (" ".join(cmd), res.returncode,
                                                   (res.stderr or res.stdout).strip()[-2000:]))
    return res.stdout


def check_prerequisites() -> None:
    missing = [t for t in REQUIRED if shutil.which(t) is None]
    if missing:
        raise CephError("Ceph test bed needs %s (Debian packages ceph-mon ceph-mgr ceph-osd "
                        "ceph-common; run `make deps`)" % ", ".join(missing))


def start(root: Path | None = None, osds: int = 3, osd_gib: int = 10, keep: bool = False) -> CephCluster:
    """Build and start a fresh cluster; return once it is HEALTH_OK.

    keep=True marks it as owned by no process (``python -m testbed.ceph up``): later sessions do
    not reap it; ``down DIR`` removes it.
    """
    check_prerequisites()
    BASE.mkdir(parents=True, exist_ok=True)
    procs.reap_stale(BASE, "ceph-")
    root = Path(root) if root else Path(tempfile.mkdtemp(prefix="ceph-", dir=BASE))
    c = CephCluster(root=root, fsid=str(uuid.uuid4()))
    procs.claim(root, owner="keep" if keep else None)
    try:
        _bootstrap(c, osds, osd_gib)
    except BaseException:
        stop(c)
        raise
    return c


def _spawn(c: CephCluster, key: str, cmd: list[str]) -> None:
    log = open(c.root / "log" / ("%s.out" % key), "ab")  # pylint: disable=consider-using-with
    c.procs[key] = procs.spawn(c.root, key, cmd, log)


def _bootstrap(c: CephCluster, osds: int, osd_gib: int) -> None:
    d = c.root
    for sub in ("run", "log", "mon", "mgr", "osd", "keyring"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    p2, p1 = free_ports(2)
    c.mon_port = p2
    (d / "ceph.conf").write_text(CONF.format(fsid=c.fsid, p2=p2, p1=p1, d=d, osd_bytes=osd_gib << 30))
    conf = ["--conf", c.conf]
    kr = d / "keyring"
    _run(["ceph-authtool", "--create-keyring", str(kr / "mon.keyring"), "--gen-key", "-n", "mon.",
          "--cap", "mon", "allow *"])
    _run(["ceph-authtool", "--create-keyring", c.keyring, "--gen-key", "-n", "client.admin",
          "--cap", "mon", "allow *", "--cap", "osd", "allow *", "--cap", "mds", "allow *",
          "--cap", "mgr", "allow *"])
    _run(["ceph-authtool", str(kr / "mon.keyring"), "--import-keyring", c.keyring])
    _run(["monmaptool", "--create", "--addv", "a", "[v2:127.0.0.1:%d,v1:127.0.0.1:%d]" % (p2, p1),
          "--fsid", c.fsid, str(d / "monmap")])
    _run(["ceph-mon", *conf, "--mkfs", "-i", "a", "--monmap", str(d / "monmap"),
          "--keyring", str(kr / "mon.keyring")])
    _spawn(c, "mon.a", ["ceph-mon", *conf, "-f", "-i", "a"])
    c.cli("mon", "stat", timeout=60)  # waits for the mon to answer
    mgr_dir = d / "mgr" / "ceph-x"
    mgr_dir.mkdir(parents=True, exist_ok=True)
    c.cli("auth", "get-or-create", "mgr.x", "mon", "allow profile mgr", "osd", "allow *",
          "mds", "allow *", "-o", str(mgr_dir / "keyring"))
    _spawn(c, "mgr.x", ["ceph-mgr", *conf, "-f", "-i", "x", "--keyring", str(mgr_dir / "keyring")])
    for dummy in range(osds):
        osd_uuid = str(uuid.uuid4())
        osd_id = int(c.cli("osd", "new", osd_uuid).strip())
        odir = d / "osd" / ("ceph-%d" % osd_id)
        odir.mkdir(parents=True, exist_ok=True)
        okr = str(odir / "keyring")
        _run(["ceph-osd", *conf, "-i", str(osd_id), "--mkfs", "--mkkey", "--no-mon-config", "--osd-uuid", osd_uuid,
              "--keyring", okr])
        c.cli("auth", "add", "osd.%d" % osd_id, "osd", "allow *", "mon", "allow profile osd",
              "mgr", "allow profile osd", "-i", okr)
        _spawn(c, "osd.%d" % osd_id, ["ceph-osd", *conf, "-f", "-i", str(osd_id), "--keyring", okr])
    c.wait_health_ok(timeout=180, osds=osds)
    # keep the state file for reaping and for `python -m testbed.ceph`
    (d / "cluster.json").write_text(json.dumps({"fsid": c.fsid, "mon_port": c.mon_port}))


def stop(c: CephCluster, remove: bool = True) -> None:
    """Stop the daemons this module started (by PID) and remove the directory."""
    procs.stop_all(c.root, sig=signal.SIGTERM, timeout=20)
    if remove:
        shutil.rmtree(c.root, ignore_errors=True)


def main(argv: list[str]) -> int:
    if len(argv) >= 1 and argv[0] == "up":
        t0 = time.monotonic()
        c = start(Path(argv[1]) if len(argv) > 1 else None, keep=True)
        print(json.dumps({"root": str(c.root), "conf": c.conf, "keyring": c.keyring,
                          "mon_host": c.mon_host, "seconds": round(time.monotonic() - t0, 1)}))
        return 0
    if len(argv) == 2 and argv[0] == "down":
        stop(CephCluster(root=Path(argv[1])))
        return 0
    print("usage: python -m testbed.ceph up [DIR] | down DIR")
    return 2


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
