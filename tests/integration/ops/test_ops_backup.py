"""Backups on the ops rack (issue #17): hospital.cloud.backup on hc-ops-3 (deployed by site.yml since the first
run), the engine against the rack's Ceph (Debian 13, Ceph 18, msgr2 secure), jobs through ansible-runner as AWX
runs them. The HA counter VM ha-a is backed up while it runs, restored to a new image, and a VM booted from that
image goes on counting from the backed-up value. Runs after test_ops_ha.py (conftest.py orders it).
"""

from __future__ import annotations

import json
import re
import time

import pytest

from integration.ops.opsrack import VIRSH, Ops, assert_ok, run_job

pytestmark = [pytest.mark.image, pytest.mark.ceph, pytest.mark.slow, pytest.mark.timeout(1800)]

BACKUP_HOST = "hc-ops-3"
STATE = "/var/lib/hospital-cloud/backup"
COUNT = re.compile(r"hc-count (\d+)")
FIGURES: dict = {}


@pytest.fixture(scope="module")
def bk(ops):
    b = Ops(ops.rack, ops.tmp, hosts=ops.hosts, seq=ops.seq, webhook=ops.webhook, switch=ops.switch, with_ha=True)
    yield b
    print("BACKUP FIGURES %s" % json.dumps(FIGURES, sort_keys=True))


def _where(bk: Ops, vm: str) -> str:
    hosts = bk.domains()[vm]["running"]
    assert len(hosts) == 1, (vm, hosts)
    return hosts[0]


def _counter(bk: Ops, host: str, vm: str) -> int:
    out = bk.sh(host, "tail -c 400 /var/log/libvirt/qemu/%s.console.log" % vm)
    return int(COUNT.findall(out)[-1])


def _images(bk: Ops) -> list[str]:
    return sorted(json.loads(bk.sh("hc-ops-1", "rbd ls --format json vms")))


def test_timer_unit_backs_up(bk):
    """The unit the hourly timer starts: a full backup of ops-a and ha-a; the timers are enabled."""
    timers = bk.sh(BACKUP_HOST, "systemctl is-enabled hospital-cloud-backup.timer hospital-cloud-backup-verify.timer "
                                "hospital-cloud-backup-prune.timer; true").split()
    assert timers == ["enabled", "enabled", "disabled"], timers  # prune only with backup_prune
    t0 = time.monotonic()
    bk.sh(BACKUP_HOST, "systemctl start hospital-cloud-backup.service")
    FIGURES["first_backup_s"] = round(time.monotonic() - t0, 1)
    assert bk.sh(BACKUP_HOST, "systemctl show -p Result --value hospital-cloud-backup.service").strip() == "success"
    last = json.loads(bk.sh(BACKUP_HOST, "cat %s/last-backup.json" % STATE))
    got = {r["image"]: r for r in last["images"]}
    assert sorted(got) == ["vms/ha-a-root", "vms/ops-a-root"] and all(r["ok"] and r["kind"] == "full"
                                                                      for r in got.values()), last
    FIGURES["first_added_mib"] = {i: round(r["added_bytes"] / 2 ** 20, 1) for i, r in got.items()}
    # each VM's KVM host was asked over SSH to freeze it: these guests run no agent, so crash-consistent
    addresses = {bk.host(h).address: h for h in bk.hosts}
    for image, vm in (("vms/ops-a-root", "ops-a"), ("vms/ha-a-root", "ha-a")):
        freeze = got[image]["freeze"]
        assert got[image]["consistency"] == "crash" and freeze["result"] == "no-agent", got[image]
        assert addresses[freeze["host"]] == _where(bk, vm) and "agent" in freeze["msg"], (freeze, _where(bk, vm))
    # the repository is on the backup host's own disk, root only, and the password file too
    assert bk.sh(BACKUP_HOST, "stat -c %a /srv/hospital-cloud/backup/restic /etc/hospital-cloud/backup/"
                              "repository.password").split() == ["700", "600"]


def test_fsfreeze_key_runs_nothing_else(bk):
    """The backup host's key reaches hc-fsfreeze on every KVM host with the host key pinned, and nothing else:
    any other command gets hc-fsfreeze's refusal."""
    for host in bk.hosts:
        out = bk.sh(BACKUP_HOST, "ssh -i /etc/hospital-cloud/backup/fsfreeze_ed25519 -l root -o BatchMode=yes "
                                 "-o StrictHostKeyChecking=yes -o UserKnownHostsFile=/etc/hospital-cloud/backup/"
                                 "fsfreeze_known_hosts -o GlobalKnownHostsFile=/dev/null %s id; true"
                    % bk.host(host).address)
        assert "usage: freeze|thaw" in out and "uid=" not in out, (host, out)


def test_backup_job_restore_and_boot(bk):
    host = _where(bk, "ha-a")
    before = _counter(bk, host, "ha-a")
    job = run_job(bk, "backup.yml", {"backup_restore_vm": "ha-a"}, name="backup-ha-a")
    assert_ok(job)
    report = job.artifacts()["backup"]["images"][0]
    assert report["ok"] and report["kind"] == "diff" and report["image"] == "vms/ha-a-root", report
    FIGURES.update(diff_added_mib=round(report["added_bytes"] / 2 ** 20, 2),
                   diff_read_mib=round(report["read_bytes"] / 2 ** 20, 2), diff_s=report["seconds"])
    images = _images(bk)
    plan = run_job(bk, "restore.yml", {"backup_restore_vm": "ha-a"}, check=True, name="restore-check")
    assert_ok(plan)
    target = plan.artifacts()["backup"]["restores"][0]["target"]
    assert _images(bk) == images and target.split("/", 1)[1] not in images
    job = run_job(bk, "restore.yml", {"backup_restore_vm": "ha-a"}, name="restore-ha-a")
    assert_ok(job)
    done = job.artifacts()["backup"]["restores"][0]
    assert done["target"] == target and done["chain"][-1] == report["snap"]
    FIGURES["restore_s"] = done["seconds"]
    # a VM from the restored disk (ha-a's definition, another name and disk, no NIC) on a host ha-a is not on
    other = next(h for h in ("hc-ops-1", "hc-ops-2", "hc-ops-3") if h != host)
    restored = target.split("/", 1)[1]
    bk.sh(other, "sed -e 's|<name>ha-a</name>|<name>ha-a-restored</name>|' -e '/<uuid>/d' -e '/<interface/,/<\\/interface>/d'"
                 " -e 's|vms/ha-a-root|vms/%s|' -e 's|ha-a.console.log|ha-a-restored.console.log|'"
                 " /etc/hospital-cloud/vms/ha-a.xml > /tmp/ha-a-restored.xml && %s create /tmp/ha-a-restored.xml"
          % (restored, VIRSH))
    try:
        deadline = time.monotonic() + 300
        first = None
        while first is None and time.monotonic() < deadline:
            out = bk.sh(other, "cat /var/log/libvirt/qemu/ha-a-restored.console.log 2>/dev/null; true")
            found = COUNT.findall(out)
            first = int(found[0]) if found else None
            time.sleep(2)
        assert first is not None, "the VM from the restored disk printed no counter in 300 s"
        # it counts on from the value on the backed-up disk: at least what ha-a showed before the backup
        assert first > before, (first, before)
        FIGURES["restored_counter"] = {"before_backup": before, "first_after_restore": first}
    finally:
        cleanup = "destroy ha-a-restored; rm -f /tmp/ha-a-restored.xml /var/log/libvirt/qemu/ha-a-restored.console.log"
        bk.sh(other, VIRSH + cleanup, check=False)
        # qemu was killed: its watch on the image lasts until the OSD times it out (30 s)
        bk.sh("hc-ops-1", "for i in $(seq 40); do rbd rm --no-progress vms/%s 2>/dev/null && exit 0; sleep 3; done; "
                          "rbd rm vms/%s" % (restored, restored))


def test_bad_restores_change_nothing(bk):
    images = _images(bk)
    unknown = run_job(bk, "restore.yml", {"backup_restore_vm": "no-such-vm"}, name="restore-unknown-vm")
    assert unknown.rc != 0 and "unknown VM 'no-such-vm'" in unknown.stdout, unknown.stdout[-3000:]
    running = run_job(bk, "restore.yml", {"backup_restore_vm": "ha-a", "backup_restore_overwrite": True},
                      name="restore-over-running-vm")
    assert running.rc != 0 and "stop the VM first" in running.stdout, running.stdout[-3000:]
    assert running.changed() == 0 and unknown.changed() == 0
    assert _images(bk) == images


def test_restore_drill_and_its_alert(bk):
    job = run_job(bk, "backup.yml", {"backup_action": "verify"}, name="restore-drill")
    assert_ok(job)
    report = job.artifacts()["backup"]
    assert report["repository_ok"] and all(r["ok"] for r in report["images"]), report
    FIGURES["drill_s"] = {r["image"]: r["seconds"] for r in report["images"]}
    # Prometheus reads the result from the backup host's node-exporter
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        res = bk.api(9090, "/api/v1/query", query="hc_backup_drill_ok")["data"]["result"]
        if len(res) == 2:
            break
        time.sleep(3)
    assert sorted((r["metric"]["image"], r["value"][1]) for r in res) == [("vms/ha-a-root", "1"),
                                                                          ("vms/ops-a-root", "1")], res
    # a repository that lost a pack file (disk fault, tampering): the drill fails, the job fails, the alert fires
    since = time.monotonic()
    bk.sh(BACKUP_HOST, "find /srv/hospital-cloud/backup/restic/data -type f | sort | head -n 1 | xargs rm -f")
    broken = run_job(bk, "backup.yml", {"backup_action": "verify"}, name="restore-drill-broken")
    assert broken.rc != 0
    FIGURES["drill_alert_s"] = bk.webhook.wait(since, "firing", timeout=180, alertname="BackupRestoreDrillFailed")
