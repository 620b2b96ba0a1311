"""kvm_host on a real systemd host (nspawn container from the base image), TCG allowed (lab)."""

from __future__ import annotations

from pathlib import Path

import pytest

from testbed.rack import ssh

pytestmark = [pytest.mark.image, pytest.mark.slow, pytest.mark.timeout(1800)]

PLAY = """
- name: KVM hosts
  hosts: lab
  roles:
    - role: hospital.cloud.kvm_host
      vars:
        kvm_host_allow_tcg: {allow_tcg}
        kvm_host_qemu_cgroup_controllers: []
        kvm_host_rack: r7
        kvm_host_labels: [ssd]
"""


@pytest.fixture(scope="module")
def kvm_rack(rack_factory):
    return rack_factory("kvmt", hosts=1, subnet="10.77.31.0/24", bridge="hckvm0")


def test_kvm_host_refuses_tcg_unless_allowed_and_changes_nothing(kvm_rack, run_playbook):
    inv = Path(kvm_rack.state_dir) / "inventory.ini"
    res = run_playbook(PLAY.format(allow_tcg="false"), inventory=inv)
    assert res.rc != 0
    assert "KVM is not usable" in res.stdout and "kvm_host_allow_tcg" in res.stdout
    assert res.changed() == 0
    assert ssh(kvm_rack, kvm_rack.hosts[0], "command -v libvirtd", check=False).returncode != 0


def test_kvm_host_check_converge_idempotent(kvm_rack, run_playbook):
    inv = Path(kvm_rack.state_dir) / "inventory.ini"
    host = kvm_rack.hosts[0]
    play = PLAY.format(allow_tcg="true")
    pre = run_playbook(play, inventory=inv, check=True, diff=True)
    assert pre.rc == 0, pre.stdout[-3000:]
    assert pre.changed() > 0
    assert ssh(kvm_rack, host, "command -v libvirtd", check=False).returncode != 0, "check mode installed something"
    first = run_playbook(play, inventory=inv)
    assert first.rc == 0, first.stdout[-3000:]
    assert first.changed() > 0
    facts = first.result("Facts | publish capacity for the placement filter", host.name)["ansible_facts"]["kvm_host_facts"]
    assert facts["rack"] == "r7" and facts["labels"] == ["ssd"] and facts["overcommit"]["cpu"] == 4.0
    assert int(facts["vcpus"]) >= 1 and int(facts["memory"]) > 0
    second = run_playbook(play, inventory=inv)
    assert second.rc == 0 and second.changed() == 0, [t["task"] for t in second.tasks if t["result"].get("changed")]
    again = run_playbook(play, inventory=inv, check=True, diff=True)
    assert again.rc == 0 and again.changed() == 0
    # the hypervisor really works: a TCG guest with a NIC on the VM bridge starts inside the host
    xml = ("<domain type='qemu'><name>hc-test-kvmhost</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>"
           "<os><type arch='x86_64' machine='pc'>hvm</type></os><features><acpi/></features><devices>"
           "<emulator>/usr/bin/qemu-system-x86_64</emulator><interface type='bridge'><source bridge='br-vm'/>"
           "<model type='virtio'/></interface></devices></domain>")
    out = ssh(kvm_rack, host, "echo \"%s\" > /tmp/d.xml && virsh define /tmp/d.xml >/dev/null && virsh start "
              "hc-test-kvmhost >/dev/null && virsh domstate hc-test-kvmhost; virsh destroy hc-test-kvmhost "
              ">/dev/null; virsh undefine hc-test-kvmhost >/dev/null" % xml).stdout
    assert out.strip().splitlines()[0] == "running"
    assert "br-vm" in ssh(kvm_rack, host, "ip -br link show type bridge").stdout
    assert ssh(kvm_rack, host, "systemctl is-enabled libvirtd").stdout.strip() == "enabled"
