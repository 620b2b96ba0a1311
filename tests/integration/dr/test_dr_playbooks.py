"""The DR playbooks (dr_setup.yml, dr_failover.yml, dr_resync.yml; role hospital.cloud.dr) against two real
clusters, as an operator runs them: one admin host per site (here both are this machine, connection local, each
with its own cluster's ceph.conf and keyring). Order: set-up (check mode, real, again), refusals, planned
failover A -> B, unplanned failover back to A with B frozen, resync of B, planned failover B -> A... in short the
whole round trip, with markers that must never be lost. Not in ``make test``: ``make test-dr``.

A VM goes the same way: a TCG guest (the base image's kernel, a 32 MiB root of dash and coreutils on the mirrored
image pacs-01-root, tests/testbed/guest.py) counts once a second into a file on its disk and prints the count on its serial console. It
is defined on both sites (one libvirtd here, so under two names, each with its disk on its own cluster) and the
playbooks stop and start it (dr_vms). A count that goes backwards after a planned failover or the failback means
lost writes; after the unplanned failover the counts lost are the real recovery point.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from integration.dr.test_rbd_mirror import has_marker, write_marker
from testbed import guest
from testbed.libvirt import URI, virsh
from testbed.poll import seconds_until, wait_for
from testbed.ansible_run import VENV_PY

pytestmark = [pytest.mark.ceph, pytest.mark.slow, pytest.mark.dr, pytest.mark.timeout(1800)]

PLAYBOOKS = Path(__file__).resolve().parents[3] / "playbooks"
POOL, IMAGE = "dr-vms", "pacs-01-disk0"  # the names test_rbd_mirror's marker helpers use
RPO_GOAL_S = 120
FIGURES: dict = {}
ROOT = "pacs-01-root"  # the guest's root disk, mirrored like IMAGE
VM = {"a": "hc-test-dr-a-pacs", "b": "hc-test-dr-b-pacs"}  # the same VM as each site defines it


def console(site: str) -> Path:
    return Path("/var/log/libvirt/qemu/%s.console.log" % VM[site])


def counts(site: str) -> list[int]:
    return guest.counts(console(site))


def first_count(site: str, timeout: float = 240) -> int:
    return wait_for(lambda: counts(site), timeout, "VM %s printing a count" % VM[site], interval=0.5,
                    details=lambda: guest.console_tail(console(site)))[0]


def domstate(site: str) -> str:
    return virsh(URI, "domstate", VM[site], check=False).strip()


@pytest.fixture(scope="module")
def dr(sites, tmp_path_factory, figures, run_module, libvirt_uri,  # pylint: disable=too-many-locals
       libvirt_domain_type):
    a, b = sites
    for site in (a, b):
        site.cluster.cli("osd", "pool", "create", POOL, "8")
        site.cluster.cli("osd", "pool", "application", "enable", POOL, "rbd")
    import rbd  # pylint: disable=import-outside-toplevel

    handle = a.cluster.rados()
    with handle.open_ioctx(POOL) as ioctx:
        rbd.RBD().create(ioctx, IMAGE, 64 << 20, features=rbd.RBD_FEATURE_LAYERING | rbd.RBD_FEATURE_EXCLUSIVE_LOCK)
    handle.shutdown()
    work = tmp_path_factory.mktemp("dr")
    subprocess.run(["rbd", "--conf", a.cluster.conf, "--keyring", a.cluster.keyring, "--name", a.cluster.client,
                    "import", "--no-progress", str(guest.tiny_root(work, guest.COUNTER)), "%s/%s" % (POOL, ROOT)],
                   check=True, capture_output=True)
    a.start_mirror()
    b.start_mirror()
    boot = guest.Boot("hc-test-dr")
    secrets = {}
    try:
        for letter, site in (("a", a), ("b", b)):
            # the cephx user qemu opens the disk as, and its libvirt secret (one per site: different keys)
            site.cluster.cli("auth", "get-or-create", "client.hc-test-dr", "mon", "profile rbd", "osd",
                             "profile rbd pool=%s" % POOL)
            secrets[letter] = str(uuid.uuid4())
            res = run_module("hospital.cloud.libvirt_secret", {
                "uri": libvirt_uri, "usage": "client.hc-test-dr site-%s" % letter, "uuid": secrets[letter],
                "value": site.cluster.cli("auth", "get-key", "client.hc-test-dr").strip()})
            assert not res.get("failed"), res.get("msg")
            res = run_module("hospital.cloud.libvirt_domain", {
                "name": VM[letter], "uri": libvirt_uri, "domain_type": libvirt_domain_type, "vcpus": 1,
                "memory": 256, "machine": "pc", "shutdown_timeout": 0,
                "state": "running" if letter == "a" else "present",
                "boot": boot.spec(),
                "disks": [{"type": "rbd", "pool": POOL, "image": ROOT, "monitors": [site.cluster.mon_host],
                           "user": "hc-test-dr", "secret_uuid": secrets[letter], "target": "vda", "cache": "none"}],
                "serial_console": True, "serial_log": str(console(letter))})
            assert not res.get("failed"), res.get("msg")
        FIGURES["vm_boot_first_count_s"] = round(seconds_until(lambda: counts("a"), 240, "the VM counting on A"), 1)
        hosts = {}
        for group, host, letter, site in (("dr_site_a", "site-a-admin", "a", a), ("dr_site_b", "site-b-admin", "b", b)):
            hosts[group] = {"hosts": {host: {
                "ansible_connection": "local", "ansible_python_interpreter": VENV_PY, "dr_ceph_conf": site.cluster.conf,
                "dr_ceph_keyring": site.cluster.keyring, "dr_ceph_client": site.cluster.client,
                "dr_vms": [{"name": VM[letter], "host": "kvm-local"}]}}}
        hosts["kvm_hosts"] = {"hosts": {"kvm-local": {"ansible_connection": "local",
                                                      "ansible_python_interpreter": VENV_PY}}}
        inv = work / "inventory.yml"
        inv.write_text(json.dumps({"all": {"children": hosts, "vars": {
            "dr_pool": POOL, "dr_images": [IMAGE, ROOT],
            # no systemd on the build machine: the fixture runs the daemons in the foreground (the role's daemon
            # tasks: tests/integration/roles); the guest's init ignores ACPI: powered off after 5 s
            "dr_rbd_mirror_daemon": False, "dr_vm_shutdown_timeout": 5}}}, indent=1, default=str))
        yield a, b, inv
    finally:
        for letter in ("a", "b"):
            virsh(libvirt_uri, "destroy", VM[letter], check=False)
            virsh(libvirt_uri, "undefine", VM[letter], check=False)
            if letter in secrets:
                virsh(libvirt_uri, "secret-undefine", secrets[letter], check=False)
            console(letter).unlink(missing_ok=True)
        boot.remove()
        figures["playbooks"] = FIGURES


def play(run_playbook, inv, name, check=False, **extra):
    t0 = time.monotonic()
    res = run_playbook(PLAYBOOKS / name, extra_vars=extra or None, inventory=inv, check=check, diff=check)
    res.seconds = round(time.monotonic() - t0, 1)
    return res


def changed(res) -> int:
    return sum(h.get("changed", 0) for h in res.data.get("stats", {}).values())


def primary(site) -> bool:
    import rbd  # pylint: disable=import-outside-toplevel

    handle = site.cluster.rados()
    try:
        with handle.open_ioctx(POOL) as ioctx:
            with rbd.Image(ioctx, IMAGE, read_only=True) as img:
                return bool(img.mirror_image_get_info()["primary"])
    finally:
        handle.shutdown()


def mirror_mode(site) -> int:
    import rbd  # pylint: disable=import-outside-toplevel

    handle = site.cluster.rados()
    try:
        with handle.open_ioctx(POOL) as ioctx:
            return rbd.RBD().mirror_mode_get(ioctx)
    finally:
        handle.shutdown()


def test_setup_check_then_real_then_no_change(dr, run_playbook):
    a, b, inv = dr
    predicted = play(run_playbook, inv, "dr_setup.yml", check=True)
    assert predicted.rc == 0, predicted.stdout[-3000:]
    assert changed(predicted) > 0
    import rbd  # pylint: disable=import-outside-toplevel

    assert mirror_mode(a) == mirror_mode(b) == rbd.RBD_MIRROR_MODE_DISABLED  # check mode changed nothing
    done = play(run_playbook, inv, "dr_setup.yml")
    assert done.rc == 0, done.stdout[-3000:]
    again = play(run_playbook, inv, "dr_setup.yml")
    assert again.rc == 0 and changed(again) == 0, again.stdout[-3000:]
    assert "eyJ" not in done.stdout + predicted.stdout  # the bootstrap token (base64 of JSON) never printed
    t0 = write_marker(a, "pb-setup")
    FIGURES["rpo_s"] = round(seconds_until(lambda: has_marker(b, "pb-setup"), RPO_GOAL_S, "marker on B"), 1)
    FIGURES["setup_s"] = done.seconds
    assert time.monotonic() - t0 < RPO_GOAL_S + 5


@pytest.mark.parametrize("extra,text", [
    ({"dr_to": "b", "dr_mode": "unplanned"}, "set dr_force_promote=true to confirm"),
    ({"dr_to": "c"}, "dr_to: a or b, got c"),
    ({"dr_images": []}, "dr_images: no image to mirror"),
    ({"dr_vms": [{"name": "hc-test-dr-nosuch", "host": "kvm-local"}]},
     "VM hc-test-dr-nosuch is not defined on kvm-local"),
    ({"dr_vms": [{"name": "hc-test-dr-a-pacs"}]}, "dr_vms[0] needs a name (the libvirt domain) and a host"),
], ids=["unplanned-without-force", "unknown-site", "no-images", "undefined-vm", "vm-without-host"])
def test_refusals_change_nothing(dr, run_playbook, extra, text):
    a, b, inv = dr
    res = play(run_playbook, inv, "dr_failover.yml", **extra)
    assert res.rc != 0 and text in res.stdout, res.stdout[-3000:]
    assert primary(a) and not primary(b)
    assert domstate("a") == "running" and domstate("b") == "shut off"


def test_planned_failover_to_b(dr, run_playbook):
    a, b, inv = dr
    write_marker(a, "pb-before-planned")
    t0 = time.monotonic()
    res = play(run_playbook, inv, "dr_failover.yml", dr_to="b")
    assert res.rc == 0, res.stdout[-3000:]
    FIGURES["planned_failover_s"] = res.seconds
    assert primary(b) and not primary(a)
    assert has_marker(b, "pb-before-planned")  # a planned failover loses nothing
    # the VM: stopped on A before the demotion, started on B, counting on from A's last count
    assert domstate("a") == "shut off" and domstate("b") == "running"
    last_a, first_b = counts("a")[-1], first_count("b")
    FIGURES["planned_rto_vm_counting_s"] = round(time.monotonic() - t0, 1)
    FIGURES["planned_counts"] = {"last_on_a": last_a, "first_on_b": first_b}
    # +1, or +2 when A was powered off between its sync and its print: never lower (lost writes)
    assert last_a < first_b <= last_a + 2, FIGURES["planned_counts"]
    write_marker(b, "pb-on-b")
    again = play(run_playbook, inv, "dr_failover.yml", dr_to="b")
    assert again.rc == 0 and changed(again) == 0


def test_unplanned_failover_to_a_then_resync_and_failback(dr, run_playbook):
    """B (primary now) is lost: A takes over with force. B comes back as a stale primary: dr_resync makes it a
    copy of A again, then a planned failover brings the images back to B with every marker."""
    a, b, inv = dr
    wait_for(lambda: has_marker(a, "pb-on-b"), RPO_GOAL_S, "B's marker on A")
    first_b = counts("b")[0]
    b.freeze()
    t0 = time.monotonic()
    res = play(run_playbook, inv, "dr_failover.yml", dr_to="a", dr_mode="unplanned", dr_force_promote=True)
    assert res.rc == 0, res.stdout[-3000:]
    FIGURES["unplanned_failover_s"] = res.seconds
    assert primary(a) and has_marker(a, "pb-on-b")
    # the VM on A goes on from B's last mirror snapshot: B's counts after it are lost (the real recovery point)
    assert domstate("a") == "running"
    first_a = first_count("a")
    FIGURES["unplanned_rto_vm_counting_s"] = round(time.monotonic() - t0, 1)
    last_b = counts("b")[-1]  # B's VM hangs on its frozen cluster: nothing after this was acknowledged
    FIGURES["unplanned_counts"] = {"first_on_b": first_b, "last_on_b": last_b, "first_on_a": first_a,
                                   "lost": last_b - first_a + 1}
    assert first_b < first_a and last_b - first_a + 1 <= RPO_GOAL_S, FIGURES["unplanned_counts"]
    write_marker(a, "pb-while-b-lost")
    b.thaw()
    refused = play(run_playbook, inv, "dr_resync.yml", dr_resync_site="b")
    assert refused.rc != 0 and "set dr_resync=true to confirm" in refused.stdout
    assert domstate("b") == "running"  # refused: B's (stale) VM untouched
    res = play(run_playbook, inv, "dr_resync.yml", dr_resync_site="b", dr_resync=True)
    assert res.rc == 0, res.stdout[-3000:]
    FIGURES["resync_s"] = res.seconds
    assert domstate("b") == "shut off"
    t0 = time.monotonic()
    back = play(run_playbook, inv, "dr_failover.yml", dr_to="b")
    assert back.rc == 0, back.stdout[-3000:]
    FIGURES["failback_s"] = back.seconds
    assert primary(b) and not primary(a)
    # home again without losing a write: B counts on from A's last count
    assert domstate("a") == "shut off" and domstate("b") == "running"
    last_a, first_b = counts("a")[-1], first_count("b")
    FIGURES["failback_rto_vm_counting_s"] = round(time.monotonic() - t0, 1)
    FIGURES["failback_counts"] = {"last_on_a": last_a, "first_on_b": first_b}
    assert last_a < first_b <= last_a + 2, FIGURES["failback_counts"]
    for name in ("pb-setup", "pb-before-planned", "pb-on-b", "pb-while-b-lost"):
        assert has_marker(b, name), name
