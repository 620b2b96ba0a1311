"""The ceph role, then the vm_guests role, on ONE rack of three real systemd hosts (the tests run in file order).

The hosts sit in racks r1-r3 (one each). The ceph role end to end: quorum, mgr, BlueStore OSDs on loop
devices, pools, users. On the same cluster: Ceph traffic is encrypted (msgr2 secure, no msgr v1 listener; a
capture on the rack's bridge never shows a marker written through RADOS, and shows it once the daemons accept
crc), the racks are CRUSH buckets and every PG spans 3 racks, and a failing `ceph-volume raw list` stops the
run before any wipe. Last, kvm_host and vm_guests on the same hosts: TCG guests (256 MiB) boot the base image's
kernel directly, with the root disk an RBD clone of the base qcow2 imported as the golden image; qemu opens the
clone as client.libvirt through the libvirt secret. (One rack for both roles: a second 3-host Ceph
deployment cost CI several minutes.)
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import select
import subprocess
import time
from pathlib import Path

import pytest

from lab.rack import ssh

pytestmark = [pytest.mark.image, pytest.mark.slow, pytest.mark.timeout(2400)]

FSID = "0b7c6f0e-5b1e-4d4b-8a53-7f6c2b9e4d21"
PLAY = """
- name: Ceph
  hosts: lab
  roles:
    - role: hospital.cloud.ceph
      vars:
        ceph_fsid: %s
        ceph_public_network: 10.77.43.0/24
        ceph_osd_devices: "{{ hc_osd_devices }}"
        ceph_crush_rack: "{{ hc_rack }}"
        # nspawn hosts on a kernel without device-mapper: no dm-crypt OSDs possible here (the preflight
        # refuses the default); encryption at rest is proven in a TCG guest (make test-dmcrypt)
        ceph_osd_dmcrypt: false
        ceph_conf_overrides:
          mon data avail warn: 5
          mon data avail crit: 2
        ceph_pools:
          - {name: vms, pg_num: 16, application: rbd}
        ceph_users:
          - {name: client.libvirt, caps: {mon: profile rbd, osd: profile rbd pool=vms}}
""" % FSID
GROUPS = "\n[ceph_mons:children]\nlab\n[ceph_mgrs]\nhc-cephr-1\n[ceph_osds:children]\nlab\n[kvm_hosts:children]\nlab\n"


@pytest.fixture(scope="module")
def ceph_rack(rack_factory):
    rack = rack_factory("cephr", hosts=3, subnet="10.77.43.0/24", bridge="hccephr0", osd_gib=4, racks=3)
    inv = Path(rack.state_dir) / "ceph-inventory.ini"
    inv.write_text(rack.inventory() + GROUPS)
    yield rack, inv


def _head_digest(path: str) -> str:
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read(1 << 20)).hexdigest()


def test_ceph_role_end_to_end(ceph_rack, run_playbook):
    rack, inv = ceph_rack
    h1, h3 = rack.hosts[0], rack.hosts[2]

    # encryption at rest is on by default: on hosts without device-mapper (these nspawn hosts) preflight
    # must refuse it clearly, before installing anything, rather than leave an OSD silently unencrypted
    no_dm = run_playbook(PLAY, inventory=inv, extra_vars={"ceph_osd_dmcrypt": True})
    assert no_dm.rc != 0
    assert all(no_dm.failed(h.name) == 1 for h in rack.hosts), no_dm.stdout[-4000:]
    assert "cannot hold dm-crypt OSDs (no /dev/mapper/control)" in no_dm.stdout
    assert "ceph_osd_dmcrypt: false" in no_dm.stdout
    assert ssh(rack, h1, "command -v ceph-mon", check=False).returncode != 0, "refused run installed Ceph"

    # the inventory's ceph_public_address is used, not overwritten by a detected one: an address that is not
    # the host's is refused before anything is installed (a documentation address, never contacted)
    foreign = run_playbook(PLAY, inventory=inv, extra_vars={"ceph_public_address": "198.51.100.7"})
    assert foreign.rc != 0 and all(foreign.failed(h.name) == 1 for h in rack.hosts), foreign.stdout[-4000:]
    assert "ceph_public_address 198.51.100.7 is not one of its addresses" in foreign.stdout
    assert ssh(rack, h1, "command -v ceph-mon", check=False).returncode != 0, "refused run installed Ceph"

    pre = run_playbook(PLAY, inventory=inv, check=True)
    assert pre.rc == 0, pre.stdout[-4000:]
    assert pre.changed() > 0
    assert ssh(rack, h1, "command -v ceph-mon", check=False).returncode != 0, "check mode installed Ceph"

    # host 3's disk holds data: without the opt-in the role must refuse and leave it untouched
    dev3 = h3.loops[0]
    with open(dev3, "r+b") as fh:
        fh.write(b"patient archive, do not overwrite" * 1000)
    before = _head_digest(dev3)
    refused = run_playbook(PLAY, inventory=inv)
    assert refused.rc != 0
    assert refused.failed(h3.name) == 1 and refused.failed(h1.name) == 0
    assert "ceph_osd_wipe_devices" in refused.stdout and dev3 in refused.stdout
    assert _head_digest(dev3) == before

    wiped = run_playbook(PLAY, inventory=inv, extra_vars={"ceph_osd_wipe_devices": True})
    assert wiped.rc == 0, wiped.stdout[-4000:]

    status = json.loads(ssh(rack, h1, "ceph -s --format json").stdout)
    assert sorted(status["quorum_names"]) == sorted(h.name for h in rack.hosts)
    osdmap = status["osdmap"].get("osdmap", status["osdmap"])
    assert osdmap["num_up_osds"] == 3 and osdmap["num_in_osds"] == 3
    pools = {p["pool_name"]: p for p in json.loads(ssh(rack, h1, "ceph osd pool ls detail --format json").stdout)}
    assert pools["vms"]["pg_num"] == 16 and "rbd" in pools["vms"]["application_metadata"]
    caps = json.loads(ssh(rack, h1, "ceph auth get client.libvirt --format json").stdout)[0]["caps"]
    assert caps == {"mon": "profile rbd", "osd": "profile rbd pool=vms"}
    ssh(rack, h1, "for i in $(seq 60); do ceph health | grep -q HEALTH_OK && exit 0; sleep 2; done; ceph health detail; exit 1")

    again = run_playbook(PLAY, inventory=inv)
    assert again.rc == 0 and again.changed() == 0, [t["task"] for t in again.tasks if t["result"].get("changed")]
    check = run_playbook(PLAY, inventory=inv, check=True, diff=True)
    assert check.rc == 0 and check.changed() == 0
    # no key material in the output of a run
    admin_key = ssh(rack, h1, "ceph auth print-key client.admin").stdout.strip()
    libvirt_key = ssh(rack, h1, "ceph auth print-key client.libvirt").stdout.strip()
    for out in (wiped.stdout, again.stdout, check.stdout):
        assert admin_key not in out and libvirt_key not in out
    # data written through RADOS on one host reads back on another
    ssh(rack, h1, "echo hospital | rados -p vms put probe -")
    assert ssh(rack, rack.hosts[1], "rados -p vms get probe -").stdout.strip() == "hospital"
    assert ssh(rack, h1, "rados -p vms get probe -").stdout.strip() == "hospital"


# The tests below use the cluster the end-to-end test converged (same module, same rack, run in file order).

def _ceph_json(rack, host, command: str):
    return json.loads(ssh(rack, host, "ceph --connect-timeout 10 %s --format json" % command).stdout)


class _Capture:
    """tcpdump on the rack's bridge, only traffic from/to the rack's own host addresses; stopped by its PID."""

    def __init__(self, rack, path: Path):
        self.path = path
        filt = " or ".join("host %s" % h.address for h in rack.hosts)
        self.proc = subprocess.Popen(  # pylint: disable=consider-using-with
            ["tcpdump", "-i", rack.bridge, "-n", "-s", "0", "-U", "-Z", "root", "-w", str(path), filt],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        ready = select.select([self.proc.stderr], [], [], 15)[0]
        assert ready and b"listening on" in self.proc.stderr.readline(), "tcpdump did not start"

    def stop(self) -> bytes:
        time.sleep(1)  # let the last segments reach the file (-U writes per packet)
        self.proc.terminate()
        self.proc.wait(timeout=15)
        return self.path.read_bytes()


def _primary_host(rack, obj: str):
    """The rack host of the primary OSD of `obj` in pool vms (the writer must be another host so that the
    client-to-OSD traffic crosses the bridge)."""
    primary = _ceph_json(rack, rack.hosts[0], "osd map vms %s" % obj)["acting_primary"]
    return _host(rack, _ceph_json(rack, rack.hosts[0], "osd find %d" % primary)["crush_location"]["host"])


def _put_marker(rack, tmp_path, obj: str, marker: bytes, client_args: str = "") -> int:
    writer = next(h for h in rack.hosts if h.name != _primary_host(rack, obj).name)
    ssh(rack, writer, "printf %%s %s > /run/hc-marker" % marker.decode())
    cap = _Capture(rack, tmp_path / ("%s.pcap" % obj))
    try:
        ssh(rack, writer, "rados %s -p vms put %s /run/hc-marker" % (client_args, obj))
    finally:
        data = cap.stop()
    ssh(rack, writer, "rm -f /run/hc-marker")
    return data.count(marker)


def _bench(rack, host, client_args: str = "", seconds: int = 5) -> float:
    out = ssh(rack, host, "rados %s -p vms bench %d write -b 4194304 -t 4 --run-name hc-bench --no-cleanup && "
                          "rados %s -p vms cleanup --run-name hc-bench >/dev/null"
              % (client_args, seconds, client_args)).stdout
    return float(re.search(r"Bandwidth \(MB/sec\):\s+([0-9.]+)", out).group(1))


def test_ceph_traffic_is_encrypted_and_msgr1_off(ceph_rack, tmp_path):
    rack, dummy = ceph_rack
    h1 = rack.hosts[0]
    osds = _ceph_json(rack, h1, "osd ls")
    assert len(osds) == 3
    for osd in osds:
        for option in ("ms_cluster_mode", "ms_service_mode", "ms_client_mode"):
            value = ssh(rack, h1, "ceph config show osd.%d %s" % (osd, option)).stdout.strip()
            assert value == "secure", (osd, option, value)
    for host in rack.hosts:
        assert ssh(rack, h1, "ceph config show mon.%s ms_mon_service_mode" % host.name).stdout.strip() == "secure"
        listening = ssh(rack, host, "ss -Htln").stdout
        assert ":3300 " in listening and ":6789 " not in listening, (host.name, listening)
    for mon in _ceph_json(rack, h1, "mon dump")["mons"]:
        assert [a["type"] for a in mon["public_addrs"]["addrvec"]] == ["v2"], mon

    marker = secrets.token_hex(32).encode()
    assert _put_marker(rack, tmp_path, "hc-secure", marker) == 0, "a RADOS payload crossed the bridge in the clear"
    secure_mbs = _bench(rack, h1)
    # control: the OSDs also accept crc (runtime override; ceph.conf says secure) and one client asks for crc:
    # the same capture must see the marker, else the capture proves nothing
    ssh(rack, h1, "ceph tell 'osd.*' config set ms_service_mode 'crc secure' >/dev/null")
    try:
        seen = _put_marker(rack, tmp_path, "hc-crc", marker, "--ms_client_mode crc")
        crc_mbs = _bench(rack, h1, "--ms_client_mode crc")
    finally:
        ssh(rack, h1, "ceph tell 'osd.*' config set ms_service_mode secure >/dev/null")
    assert seen >= 1, "control run: the capture did not see the crc-mode payload"
    print("\nrados bench write 4 MiB x4, 5 s: secure %.1f MB/s, crc (client-OSD) %.1f MB/s, secure/crc %.2f"
          % (secure_mbs, crc_mbs, secure_mbs / crc_mbs if crc_mbs else float("nan")))


def test_racks_are_crush_buckets_and_pgs_span_three_racks(ceph_rack):
    rack, dummy = ceph_rack
    h1 = rack.hosts[0]
    nodes = _ceph_json(rack, h1, "osd tree")["nodes"]
    by_id = dict((n["id"], n) for n in nodes)
    parent = dict((c, n["name"]) for n in nodes for c in n.get("children", []))
    racks = sorted(n["name"] for n in nodes if n["type"] == "rack")
    assert racks == ["r1", "r2", "r3"] and all(parent[n["id"]] == "default" for n in nodes if n["type"] == "rack")
    host_rack = dict((n["name"], parent[n["id"]]) for n in nodes if n["type"] == "host")
    assert host_rack == dict((h.name, h.rack) for h in rack.hosts), host_rack
    osd_rack = dict((n["id"], host_rack[parent[n["id"]]]) for n in nodes if n["type"] == "osd")
    assert _ceph_json(rack, h1, "osd pool get vms crush_rule")["crush_rule"] == "replicated_rack"
    rule = next(r for r in _ceph_json(rack, h1, "osd crush rule dump") if r["rule_name"] == "replicated_rack")
    assert any(s.get("type") == "rack" for s in rule["steps"]), rule
    pgs = _ceph_json(rack, h1, "pg ls")
    pgs = pgs["pg_stats"] if isinstance(pgs, dict) else pgs
    assert pgs
    for pg in pgs:
        assert len({osd_rack[o] for o in pg["acting"]}) == 3, (pg["pgid"], pg["acting"])
    assert by_id  # the tree was read


DR_DAEMON_PLAY = """
- name: The site's rbd-mirror daemon
  hosts: hc-cephr-1
  tasks:
    - name: Daemon
      ansible.builtin.include_role:
        name: hospital.cloud.dr
        tasks_from: daemon.yml
"""


def test_dr_rbd_mirror_daemon_runs_on_the_site_host(ceph_rack, run_playbook):
    """hospital.cloud.dr's daemon: Debian's rbd-mirror at the cluster's version, its own cephx user, the unit
    running and the daemon in the cluster's service map (connected with that user). The mirroring itself between
    two clusters is make test-dr (host-side clusters)."""
    rack, inv = ceph_rack
    h1 = rack.hosts[0]
    daemon_id = "rbd-mirror.%s" % h1.name
    plan = run_playbook(DR_DAEMON_PLAY, inventory=inv, check=True)
    assert plan.rc == 0 and plan.changed() > 0, plan.stdout[-3000:]
    assert ssh(rack, h1, "dpkg-query -W rbd-mirror", check=False).returncode != 0, "check mode installed rbd-mirror"
    t0 = time.monotonic()
    first = run_playbook(DR_DAEMON_PLAY, inventory=inv)
    seconds = round(time.monotonic() - t0, 1)
    assert first.rc == 0 and first.changed() > 0, first.stdout[-3000:]
    again = run_playbook(DR_DAEMON_PLAY, inventory=inv)
    assert again.rc == 0 and again.changed() == 0, [t["task"] for t in again.tasks if t["result"].get("changed")]
    check = run_playbook(DR_DAEMON_PLAY, inventory=inv, check=True)
    assert check.rc == 0 and check.changed() == 0
    unit = "ceph-rbd-mirror@%s.service" % daemon_id
    assert ssh(rack, h1, "systemctl is-active %s; systemctl is-enabled %s ceph-rbd-mirror.target"
               % (unit, unit)).stdout.split() == ["active", "enabled", "enabled"]
    versions = ssh(rack, h1, "dpkg-query -W -f '${Version}\\n' rbd-mirror ceph-common").stdout.split()
    assert len(versions) == 2 and versions[0] == versions[1], versions
    caps = _ceph_json(rack, h1, "auth get client.%s" % daemon_id)[0]["caps"]
    assert caps == {"mon": "profile rbd-mirror", "osd": "profile rbd"}, caps
    keyring = "/etc/ceph/ceph.client.%s.keyring" % daemon_id
    assert ssh(rack, h1, "stat -c '%%a %%U %%G' %s" % keyring).stdout.split() == ["600", "ceph", "ceph"]
    key = ssh(rack, h1, "ceph auth print-key client.%s" % daemon_id).stdout.strip()
    assert key and all(key not in r.stdout for r in (first, again, check))
    # connected to the cluster as that user: the daemon registers itself in the service map
    deadline, daemons = time.monotonic() + 60, {}
    while time.monotonic() < deadline:
        daemons = _ceph_json(rack, h1, "service dump")["services"].get("rbd-mirror", {}).get("daemons", {})
        # it registers under the part of its name after "rbd-mirror."
        if any(isinstance(d, dict) and d.get("metadata", {}).get("id") == h1.name
               and d["metadata"].get("hostname") == h1.name for d in daemons.values()):
            break
        time.sleep(3)
    else:
        raise AssertionError("rbd-mirror not in the service map: %s" % daemons)
    print("\nrbd-mirror daemon set up in %.1f s (package, key, unit)" % seconds)


def test_failed_osd_listing_stops_the_run_before_any_wipe(ceph_rack, run_playbook):
    rack, inv = ceph_rack
    h3 = rack.hosts[2]
    dev = h3.loops[0]
    osd = ssh(rack, h3, "cat /var/lib/ceph/osd/ceph-*/whoami").stdout.strip()
    # the role runs `ceph-volume` from PATH: /usr/local/sbin comes before /usr/sbin
    ssh(rack, h3, "cat > /usr/local/sbin/ceph-volume <<'EOF'\n%sEOF\nchmod 755 /usr/local/sbin/ceph-volume; "
                  "ceph-volume raw list; test $? -eq 1" % FAILING_CEPH_VOLUME)
    # the OSD is stopped so that nothing but the role could change the device while it runs
    ssh(rack, h3, "systemctl stop ceph-osd@%s" % osd)
    try:
        before = _sha256(dev)
        # only the host under test: the other two converge to no change anyway (saves ~100 s of CI)
        res = run_playbook(PLAY, inventory=inv, extra_vars={"ceph_osd_wipe_devices": True},
                           args=["--limit", h3.name])
        after = _sha256(dev)
    finally:
        ssh(rack, h3, "rm -f /usr/local/sbin/ceph-volume && systemctl reset-failed ceph-osd@%s; "
                      "systemctl start ceph-osd@%s" % (osd, osd))
    assert after == before, "the disk of osd.%s changed although its OSD listing failed" % osd
    assert res.rc != 0 and res.failed(h3.name) == 1, res.stdout[-3000:]
    assert "ceph-volume raw list` failed" in res.stdout and "simulated failure" in res.stdout, res.stdout[-3000:]
    ssh(rack, rack.hosts[0], "for i in $(seq 60); do ceph osd stat | grep -q '3 up.*3 in' && exit 0; sleep 2; done; "
                             "ceph osd stat; exit 1")


FAILING_CEPH_VOLUME = """#!/bin/sh
# test bed: `ceph-volume raw list` fails, everything else is the real ceph-volume
if [ "$1 $2" = "raw list" ]; then echo simulated failure >&2; exit 1; fi
exec /usr/sbin/ceph-volume "$@"
"""


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


# kvm_host and vm_guests on the cluster above (last: the tests before need hosts without VMs)

PLAN_TASK = "Placement | where each VM runs (moves are not executed)"

KVM_PLAY = """
- name: KVM hosts
  hosts: kvm_hosts
  roles:
    - role: hospital.cloud.kvm_host
      vars:
        kvm_host_allow_tcg: true
        kvm_host_qemu_cgroup_controllers: []
        kvm_host_reserved_vcpus: 0
        kvm_host_reserved_memory_mib: 1024
"""


# the facts vm_guests needs from kvm_host (kvm_host_facts, kvm_host_domain_type) without its install steps
FACTS_PLAY = """
- name: KVM host facts
  hosts: kvm_hosts
  tasks:
    - name: Facts of hospital.cloud.kvm_host
      ansible.builtin.include_role:
        name: hospital.cloud.kvm_host
        tasks_from: "{{ item }}"
      loop: [preflight.yml, facts.yml]
      vars:
        kvm_host_allow_tcg: true
        kvm_host_reserved_vcpus: 0
        kvm_host_reserved_memory_mib: 1024
"""

VMG_PLAY = """
- name: VM guests
  hosts: kvm_hosts
  roles:
    - role: hospital.cloud.vm_guests
"""


CONSOLE = "/var/log/libvirt/qemu/test-a.console.log"
VMS = [
    {"name": "test-a", "vcpus": 1, "memory": 256, "disk": 4, "anti_affinity": "t", "extra": {"serial_log": CONSOLE}},
    {"name": "test-b", "vcpus": 1, "memory": 256, "disk": 4, "anti_affinity": "t"},
    {"name": "test-c", "vcpus": 1, "memory": 256, "disk": 4},
]


@pytest.fixture(scope="module")
def vmg(ceph_rack, base_image):
    rack, inv = ceph_rack
    extra = {
        "vm_guests_vms": VMS,
        "vm_guests_golden_image_src": str(base_image.qcow2),
        "vm_guests_kernel_src": str(base_image.kernel),
        "vm_guests_initrd_src": str(base_image.initrd),
        "vm_guests_kernel": "/var/lib/libvirt/boot/vmlinuz",
        "vm_guests_initrd": "/var/lib/libvirt/boot/initrd",
        # init=/bin/sh: the initramfs mounts the root from the RBD clone (vda) and runs /bin/sh from it, then the guest
        # idles (a full systemd boot of three TCG guests would load the 2-core CI machine for minutes)
        "vm_guests_cmdline": base_image.cmdline + " init=/bin/sh",
    }
    return rack, inv, extra


def _run(run_playbook, vmg, play, extra=None, check=False):
    dummy, inv, base_extra = vmg
    t0 = time.monotonic()
    res = run_playbook(play, extra_vars=dict(base_extra, **(extra or {})), check=check, diff=check, inventory=inv)
    print("playbook%s: %.0f s, changed=%d" % (" --check" if check else "", time.monotonic() - t0, res.changed()))
    return res


def _host(rack, name):
    return next(h for h in rack.hosts if h.name == name)


def _changed_tasks(res):
    return sorted({"%s@%s" % (t["task"], t["host"]) for t in res.tasks if t["result"].get("changed")})


def test_vm_guests_on_a_real_rack(vmg, run_playbook):  # pylint: disable=too-many-locals,too-many-statements
    rack, dummy, dummy2 = vmg
    mon = rack.hosts[0]

    # kvm_host on the converged Ceph hosts; the ceph role's play again must change nothing
    base = _run(run_playbook, vmg, KVM_PLAY + PLAY)
    assert base.rc == 0, base.stdout[-4000:]
    ceph_changed = [t["task"] for t in base.tasks if t["play"] == "Ceph" and t["result"].get("changed")]
    assert ceph_changed == [], ceph_changed

    # check mode on a cluster without the golden image: predicts, creates nothing, does not crash
    pre = _run(run_playbook, vmg, FACTS_PLAY + VMG_PLAY, check=True)
    assert pre.rc == 0, pre.stdout[-4000:]
    assert pre.changed() > 0
    assert "would import the golden image vms/debian-12-golden" in pre.stdout
    assert ssh(rack, mon, "rbd -p vms ls").stdout.strip() == ""
    for h in rack.hosts:
        assert ssh(rack, h, "virsh -c qemu:///system list --all --name").stdout.strip() == "", h.name

    first = _run(run_playbook, vmg, FACTS_PLAY + VMG_PLAY)
    assert first.rc == 0, first.stdout[-4000:]
    assert first.changed() > 0
    plan = first.result(PLAN_TASK)["ansible_facts"]["vm_guests_plan"]
    assert sorted(plan["hosts"]) == ["test-a", "test-b", "test-c"]
    assert plan["hosts"] == plan["assignment"] and plan["pending_moves"] == []
    assert len(set(plan["hosts"].values())) == 3, plan["hosts"]
    for vm, host in plan["hosts"].items():
        h = _host(rack, host)
        assert ssh(rack, h, "virsh -c qemu:///system domstate %s" % vm).stdout.strip() == "running", (vm, host)
        assert "enable" in ssh(rack, h, "virsh -c qemu:///system dominfo %s | grep -i '^autostart:'" % vm).stdout
        for other in rack.hosts:
            if other.name != host:
                assert vm not in ssh(rack, other, "virsh -c qemu:///system list --all --name").stdout
    # disks are clones of the protected golden snapshot, grown to 4 GiB, opened by qemu (cephx via the secret)
    for vm in plan["hosts"]:
        info = json.loads(ssh(rack, mon, "rbd info --format json vms/%s-root" % vm).stdout)
        assert info["size"] == 4 << 30
        assert info["parent"]["image"] == "debian-12-golden" and info["parent"]["snapshot"] == "base"
        status = json.loads(ssh(rack, mon, "rbd status --format json vms/%s-root" % vm).stdout)
        assert status["watchers"], "qemu has not opened %s-root" % vm
    key = ssh(rack, mon, "ceph auth get-key client.libvirt").stdout.strip()
    assert key and key not in first.stdout and key not in first.stderr
    # the guest kernel boots from the clone (direct kernel boot under TCG): its serial console log says so
    log = ssh(rack, _host(rack, plan["hosts"]["test-a"]),
              "for i in $(seq 240); do grep -q 'EXT4-fs (vda): mounted' %s && break; sleep 1; done; cat %s" % (CONSOLE, CONSOLE))
    assert "Linux version" in log.stdout and "EXT4-fs (vda): mounted filesystem" in log.stdout, log.stdout[-2000:]

    second = _run(run_playbook, vmg, FACTS_PLAY + VMG_PLAY)
    assert second.rc == 0 and second.changed() == 0, _changed_tasks(second)
    again = _run(run_playbook, vmg, FACTS_PLAY + VMG_PLAY, check=True)
    assert again.rc == 0 and again.changed() == 0, _changed_tasks(again)

    # a plan that moves a running VM is reported, not executed; a VM dropped from the inventory and a
    # foreign domain are reported, never removed
    host_a, host_c = plan["hosts"]["test-a"], plan["hosts"]["test-c"]
    foreign = ("<domain type='qemu'><name>hc-foreign</name><memory unit='MiB'>32</memory><vcpu>1</vcpu>"
               "<os><type arch='x86_64' machine='pc'>hvm</type></os></domain>")
    ssh(rack, _host(rack, host_a), "echo \"%s\" > /tmp/f.xml && virsh -c qemu:///system define /tmp/f.xml" % foreign)
    vms = [dict(VMS[0]), dict(VMS[2], pin=host_a)]
    moved = _run(run_playbook, vmg, FACTS_PLAY + VMG_PLAY, extra={"vm_guests_vms": vms})
    assert moved.rc == 0, moved.stdout[-4000:]
    assert moved.changed() == 0, _changed_tasks(moved)
    mplan = moved.result(PLAN_TASK)["ansible_facts"]["vm_guests_plan"]
    assert [(m["vm"], m["from"], m["to"]) for m in mplan["pending_moves"]] == [("test-c", host_c, host_a)]
    assert mplan["hosts"]["test-c"] == host_c
    assert mplan["unmanaged"] == {plan["hosts"]["test-b"]: ["test-b"], host_a: ["hc-foreign"]}
    assert mplan["removed_from_inventory"] == ["test-b"]
    assert "planned moves NOT executed" in moved.stdout
    state = ssh(rack, _host(rack, host_c), "virsh -c qemu:///system domstate test-c").stdout.strip()
    assert state == "running"
    assert ssh(rack, _host(rack, plan["hosts"]["test-b"]),
               "virsh -c qemu:///system domstate test-b").stdout.strip() == "running"
