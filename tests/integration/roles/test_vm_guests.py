"""vm_guests on a rack of 3 real systemd hosts with kvm_host and a 3-host Ceph cluster (ceph role).

TCG guests (256 MiB) boot the base image's kernel directly, with the root disk an RBD clone of the base
qcow2 imported as the golden image; qemu opens the clone as client.libvirt through the libvirt secret.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from lab.rack import ssh

pytestmark = [pytest.mark.image, pytest.mark.ceph, pytest.mark.slow, pytest.mark.timeout(2400)]

SUBNET = "10.77.42.0/24"
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

CEPH_PLAY = """
- name: Ceph cluster
  hosts: ceph_mons:ceph_mgrs:ceph_osds
  roles:
    - role: hospital.cloud.ceph
      vars:
        ceph_fsid: 7c1d9e52-3b4a-4f6e-8d2c-5a9b0e1f2d3c
        ceph_public_network: %s
        ceph_osd_devices: "{{ hc_osd_devices | default([]) }}"
        # nspawn hosts on a kernel without device-mapper: no dm-crypt OSDs possible here (the preflight
        # refuses the default); encryption at rest is proven in a TCG guest (make test-dmcrypt)
        ceph_osd_dmcrypt: false
        ceph_conf_overrides:
          mon data avail warn: 5
          mon data avail crit: 2
          bluestore cache autotune: "false"
          bluestore cache size: 64M
        ceph_pools:
          - {name: vms, application: rbd, pg_num: 16}
        ceph_users:
          - name: client.libvirt
            caps: {mon: profile rbd, osd: profile rbd pool=vms}
""" % SUBNET

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

GROUPS = """
[kvm_hosts:children]
lab
[ceph_mons:children]
lab
[ceph_osds:children]
lab
[ceph_mgrs]
{first}
"""

CONSOLE = "/var/log/libvirt/qemu/test-a.console.log"
VMS = [
    {"name": "test-a", "vcpus": 1, "memory": 256, "disk": 4, "anti_affinity": "t", "extra": {"serial_log": CONSOLE}},
    {"name": "test-b", "vcpus": 1, "memory": 256, "disk": 4, "anti_affinity": "t"},
    {"name": "test-c", "vcpus": 1, "memory": 256, "disk": 4},
]


@pytest.fixture(scope="module")
def vmg(rack_factory, base_image, tmp_path_factory):
    rack = rack_factory("vmg", hosts=3, subnet=SUBNET, bridge="hcvmg0", osd_gib=4)
    groups = tmp_path_factory.mktemp("vmg") / "groups.ini"
    groups.write_text(GROUPS.format(first=rack.hosts[0].name))
    inventory = str(Path(rack.state_dir) / "inventory.ini")
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
    yield rack, ["-i", inventory, "-i", str(groups)], extra
    for h in rack.hosts:  # TCG guests make the rack's shutdown slow: power them off first
        ssh(rack, h, "for d in $(virsh -c qemu:///system list --name); do virsh -c qemu:///system destroy $d; done",
            check=False)


def _run(run_playbook, vmg, play, extra=None, check=False):
    dummy, inv, base_extra = vmg
    t0 = time.monotonic()
    res = run_playbook(play, extra_vars=dict(base_extra, **(extra or {})), check=check, diff=check,
                       inventory=inv[1], args=inv[2:])
    print("playbook%s: %.0f s, changed=%d" % (" --check" if check else "", time.monotonic() - t0, res.changed()))
    return res


def _host(rack, name):
    return next(h for h in rack.hosts if h.name == name)


def _changed_tasks(res):
    return sorted({"%s@%s" % (t["task"], t["host"]) for t in res.tasks if t["result"].get("changed")})


def test_vm_guests_on_a_real_rack(vmg, run_playbook):  # pylint: disable=too-many-locals,too-many-statements
    rack, dummy, dummy2 = vmg
    mon = rack.hosts[0]

    base = _run(run_playbook, vmg, KVM_PLAY + CEPH_PLAY)
    assert base.rc == 0, base.stdout[-4000:]

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
