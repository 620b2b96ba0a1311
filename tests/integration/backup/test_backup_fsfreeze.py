"""Filesystem-consistent backups: hc-backup freezes a running guest's filesystems through its qemu-guest-agent
(roles/backup/files/hc_fsfreeze.py on the KVM host) around the RBD snapshot.

A real TCG guest on the test-bed Ceph cluster (tests/testbed/guest.py: its root an ext4 RBD image, qemu-ga
started by its init on the agent's virtio port, a counter writing to the root every second). ext4 marks a
mounted filesystem "needs_recovery" on disk and clears the mark only when it is frozen (journal flushed): a
snapshot without the freeze has the mark (crash-consistent: mounting it replays the journal), one under the
freeze does not. hc-fsfreeze runs here directly (this machine is the guest's KVM host); the SSH hop from the
backup host is the ops tier's (tests/integration/ops/test_ops_backup.py).
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from testbed import guest
from testbed.ceph import free_ports
from testbed.libvirt import virsh
from testbed.poll import wait_for

pytestmark = [pytest.mark.ceph, pytest.mark.libvirt, pytest.mark.timeout(900)]

rbd = pytest.importorskip("rbd", reason="python3-rbd comes with the Debian packages (make deps)")
FILES = Path(__file__).resolve().parents[3] / "roles" / "backup" / "files"
ENGINE, FSFREEZE = FILES / "hc_backup.py", FILES / "hc_fsfreeze.py"
POOL, IMAGE, VM = "hc-bkf", "fz-root", "hc-test-bkf"
CONSOLE = Path("/var/log/libvirt/qemu/%s.console.log" % VM)
AGENT_CHANNEL = "<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>"
EXT4_RECOVER = 0x4  # s_feature_incompat: the journal must be replayed before the filesystem is consistent
FIGURES: dict = {}


def _counts() -> list[int]:
    return guest.counts(CONSOLE)


def _console_tail() -> str:
    return guest.console_tail(CONSOLE)


class Fz:
    def __init__(self, cluster, tmp: Path, uri: str):
        self.cluster, self.tmp, self.uri = cluster, tmp, uri
        self.handle = cluster.rados()
        self.ioctx = self.handle.open_ioctx(POOL)
        self.config = tmp / "backup.json"
        self.textfile = tmp / "textfile" / "hc_backup.prom"

    def write_config(self, freeze: bool, required: bool = False, command: list[str] | None = None) -> None:
        image = {"image": "%s/%s" % (POOL, IMAGE), "vm": VM}
        if required:
            image["consistency"] = "filesystem"  # the VM's backup_consistency
        conf = {"ceph": {"conf": self.cluster.conf, "keyring": self.cluster.keyring,
                         "id": self.cluster.client.split(".", 1)[1]},
                "repository": str(self.tmp / "repo"), "password_file": str(self.tmp / "password"),
                "state_dir": str(self.tmp / "state"), "hostname": "backup-test", "textfile": str(self.textfile),
                "images": [image], "full_every_hours": 168, "retention": {"hourly": 24}, "prune": False}
        if freeze:
            # the KVM host is this machine: hc-fsfreeze without the SSH hop ({host} is not used)
            conf["freeze"] = {"hosts": ["kvm-local"], "command": command or [sys.executable, str(FSFREEZE)],
                              "timeout": 60}
        self.config.write_text(json.dumps(conf))

    def consistent_metric(self) -> list[str]:
        return [line for line in self.textfile.read_text().splitlines()
                if line.startswith("hc_backup_last_filesystem_consistent{")]

    def run(self, *args: str) -> dict:
        res = subprocess.run([sys.executable, str(ENGINE), "--config", str(self.config), *args], capture_output=True,
                             text=True, timeout=600, check=False)
        assert res.returncode == 0, (res.stdout[-2000:], res.stderr[-2000:])
        return json.loads(res.stdout)

    def needs_recovery(self, image: str, snap: str | None = None) -> bool:
        """The ext4 superblock's RECOVER flag (superblock at 1024, s_feature_incompat at +0x60)."""
        with rbd.Image(self.ioctx, image, snapshot=snap, read_only=True) as img:
            block = img.read(1024, 1024)
        assert struct.unpack_from("<H", block, 0x38)[0] == 0xEF53, "not ext4"
        return bool(struct.unpack_from("<I", block, 0x60)[0] & EXT4_RECOVER)


@pytest.fixture(scope="module")
def fz(ceph_cluster, tmp_path_factory, run_module, libvirt_uri, libvirt_domain_type):
    tmp = tmp_path_factory.mktemp("fsfreeze")
    ceph_cluster.cli("osd", "pool", "create", POOL, "8")
    ceph_cluster.cli("osd", "pool", "application", "enable", POOL, "rbd")
    root = guest.tiny_root(tmp, guest.AGENT + guest.COUNTER, guest.COUNTER_TOOLS + ("/usr/sbin/qemu-ga",))
    subprocess.run(["rbd", "--conf", ceph_cluster.conf, "--keyring", ceph_cluster.keyring, "--name",
                    ceph_cluster.client, "import", "--no-progress", str(root), "%s/%s" % (POOL, IMAGE)],
                   check=True, capture_output=True)
    ceph_cluster.cli("auth", "get-or-create", "client.hc-test-bkf", "mon", "profile rbd", "osd",
                     "profile rbd pool=%s" % POOL)
    secret = str(uuid.uuid4())
    boot = guest.Boot("hc-test-bkf")
    (tmp / "password").write_text("hc-test-" + os.urandom(12).hex() + "\n")
    subprocess.run(["restic", "-r", str(tmp / "repo"), "init"], env=dict(os.environ, RESTIC_PASSWORD_FILE=str(
        tmp / "password")), check=True, capture_output=True)
    f = Fz(ceph_cluster, tmp, libvirt_uri)
    try:
        res = run_module("hospital.cloud.libvirt_secret", {
            "uri": libvirt_uri, "usage": "client.hc-test-bkf secret", "uuid": secret,
            "value": ceph_cluster.cli("auth", "get-key", "client.hc-test-bkf").strip()})
        assert not res.get("failed"), res.get("msg")
        res = run_module("hospital.cloud.libvirt_domain", {
            "name": VM, "uri": libvirt_uri, "domain_type": libvirt_domain_type, "vcpus": 1, "memory": 256,
            "machine": "pc", "shutdown_timeout": 0, "state": "running", "boot": boot.spec(),
            "disks": [{"type": "rbd", "pool": POOL, "image": IMAGE, "monitors": [ceph_cluster.mon_host],
                       "user": "hc-test-bkf", "secret_uuid": secret, "target": "vda", "cache": "none"}],
            "serial_console": True, "serial_log": str(CONSOLE), "extra_devices": [AGENT_CHANNEL]})
        assert not res.get("failed"), res.get("msg")
        t0 = time.monotonic()
        wait_for(_counts, 240, "the guest counting", details=_console_tail)
        ping = ("qemu-agent-command", VM, '{"execute":"guest-ping"}')
        wait_for(lambda: '"return"' in virsh(libvirt_uri, *ping, check=False, timeout=120), 240,
                 "the guest agent answering", details=_console_tail)
        FIGURES["guest_agent_ready_s"] = round(time.monotonic() - t0, 1)
        yield f
    finally:
        virsh(libvirt_uri, "destroy", VM, check=False)
        virsh(libvirt_uri, "undefine", VM, check=False)
        virsh(libvirt_uri, "secret-undefine", secret, check=False)
        CONSOLE.unlink(missing_ok=True)
        boot.remove()
        f.ioctx.close()
        f.handle.shutdown()
        ceph_cluster.cli("auth", "del", "client.hc-test-bkf", check=False)
        ceph_cluster.cli("osd", "pool", "rm", POOL, POOL, "--yes-i-really-really-mean-it", check=False)
        ceph_cluster.settle()
        print("FSFREEZE FIGURES %s" % json.dumps(FIGURES, sort_keys=True))


def test_without_freeze_the_snapshot_is_crash_consistent(fz):
    """The control: the same guest, no freeze configured: its snapshot needs a journal replay."""
    fz.write_config(freeze=False)
    done = fz.run("backup")["images"][0]
    assert done["ok"] and done["consistency"] == "crash" and done["freeze"]["result"] == "off", done
    assert fz.needs_recovery(IMAGE, done["snap"])


def test_frozen_snapshot_is_filesystem_consistent_and_the_guest_goes_on(fz):
    fz.write_config(freeze=True, required=True)
    before = _counts()[-1]
    done = fz.run("backup")["images"][0]
    assert done["ok"] and done["consistency"] == "filesystem", done
    assert "warning" not in done and done["consistency_required"] == "filesystem", done
    assert fz.consistent_metric() == ['hc_backup_last_filesystem_consistent{image="%s/%s",required="true"} 1'
                                      % (POOL, IMAGE)]
    assert done["freeze"]["result"] == "frozen" and done["freeze"]["thaw"] == "thawed", done
    FIGURES.update(frozen_s=done["freeze"]["frozen_seconds"], kind=done["kind"], backup_s=done["seconds"])
    assert not fz.needs_recovery(IMAGE, done["snap"])
    # what the repository holds is that clean filesystem: restored to a new image, the same superblock
    restored = fz.run("restore", "--image", "%s/%s" % (POOL, IMAGE))["restores"][0]["target"].split("/", 1)[1]
    try:
        assert not fz.needs_recovery(restored)
    finally:
        rbd.RBD().remove(fz.ioctx, restored)
    # thawed: the guest writes on
    wait_for(lambda: _counts()[-1] > before + 2, 60, "the guest counting after the thaw", details=_console_tail)


def test_a_vm_that_needs_the_freeze_and_missed_it_is_backed_up_and_reported(fz):
    """backup_consistency filesystem, but the KVM host cannot be reached (its sshd down: nothing listens on the
    port): the backup is still made (crash-consistent beats none), the report and the metric say what it is."""
    port = free_ports(1)[0]
    fz.write_config(freeze=True, required=True, command=[
        "ssh", "-p", str(port), "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "-o", "StrictHostKeyChecking=yes",
        "-o", "UserKnownHostsFile=/dev/null", "127.0.0.1"])
    done = fz.run("backup")["images"][0]
    assert done["ok"] and done["consistency"] == "crash" and done["freeze"]["result"] == "failed", done
    assert done["warning"].startswith("only crash-consistent: the guest's filesystems were not frozen (failed: "
                                      "kvm-local: ssh: connect to host 127.0.0.1 port %d" % port), done["warning"]
    assert fz.needs_recovery(IMAGE, done["snap"])
    assert fz.consistent_metric() == ['hc_backup_last_filesystem_consistent{image="%s/%s",required="true"} 0'
                                      % (POOL, IMAGE)]


def test_a_freeze_nobody_thaws_ends_by_itself(fz):
    """The backup host died between freeze and thaw: hc-fsfreeze's watchdog thaws after --max-seconds."""
    res = subprocess.run([sys.executable, str(FSFREEZE), "--max-seconds", "8", "freeze", VM], capture_output=True,
                         text=True, check=True, timeout=120)
    assert json.loads(res.stdout)["result"] == "frozen", res.stdout
    t0 = time.monotonic()
    time.sleep(1.5)
    held = _counts()[-1]
    time.sleep(3)
    assert _counts()[-1] == held, "the guest wrote while frozen"
    wait_for(lambda: _counts()[-1] > held, 60, "the guest counting after the watchdog's thaw", details=_console_tail)
    FIGURES["watchdog_thaw_after_s"] = round(time.monotonic() - t0, 1)
    assert FIGURES["watchdog_thaw_after_s"] >= 5


@pytest.mark.parametrize("words", [["freeze"], ["freeze", "x;rm -rf /"], ["reboot", VM], ["freeze", VM, "more"]])
def test_hc_fsfreeze_refuses_anything_else(fz, words):
    res = subprocess.run([sys.executable, str(FSFREEZE)], capture_output=True, text=True, timeout=60, check=False,
                         env=dict(os.environ, SSH_ORIGINAL_COMMAND=" ".join(words)))
    assert res.returncode == 2 and json.loads(res.stdout)["msg"].startswith("usage: freeze|thaw"), res.stdout
    assert virsh(fz.uri, "domstate", VM).strip() == "running"
