"""kvm_host on a real systemd host (nspawn container from the base image), TCG allowed (lab)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.rack import ssh

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
        kvm_host_pki_dir: {pki}
"""


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """This module's migration CA directory on the controller."""
    return tmp_path_factory.mktemp("pki") / "ca"


@pytest.fixture(scope="module")
def kvm_rack(rack_factory):
    return rack_factory("kvmt", hosts=1, subnet="10.77.31.0/24", bridge="hckvm0")


def test_kvm_host_refuses_tcg_unless_allowed_and_changes_nothing(kvm_rack, run_playbook, pki):
    inv = Path(kvm_rack.state_dir) / "inventory.ini"
    res = run_playbook(PLAY.format(allow_tcg="false", pki=pki), inventory=inv)
    assert res.rc != 0
    assert "KVM is not usable" in res.stdout and "kvm_host_allow_tcg" in res.stdout
    assert res.changed() == 0
    assert ssh(kvm_rack, kvm_rack.hosts[0], "command -v libvirtd", check=False).returncode != 0


def test_kvm_host_check_converge_idempotent(kvm_rack, run_playbook, pki):
    inv = Path(kvm_rack.state_dir) / "inventory.ini"
    host = kvm_rack.hosts[0]
    play = PLAY.format(allow_tcg="true", pki=pki)
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
    _migration_tls(kvm_rack, host, run_playbook, play, inv, pki)
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


def _migration_tls(rack, host, run_playbook, play, inv, pki) -> None:
    """Migration TLS: CA key on the controller only (0600), host key made on the host (libvirt-qemu may read it,
    nobody else), the host certificate names the host and its address, qemu.conf forces TLS; a certificate
    within kvm_host_pki_renew_days of its expiry is re-issued (here: renew 400 days ahead of a 365-day one)."""
    d = "/etc/pki/qemu-migration"
    assert oct((pki / "ca-key.pem").stat().st_mode & 0o777) == "0o600" and (pki / "ca-cert.pem").is_file()
    out = ssh(rack, host, "stat -c '%%n %%U:%%G %%a' /etc/pki %s %s/*.pem; ls %s" % (d, d, d)).stdout
    assert "/etc/pki root:root 755" in out and "%s root:libvirt-qemu 750" % d in out and "%s/server-key.pem root:libvirt-qemu 640" % d in out, out
    assert "ca-key" not in out, out
    conf = ssh(rack, host, "grep -E '^migrate_tls' /etc/libvirt/qemu.conf").stdout
    assert "migrate_tls_force = 1" in conf and "migrate_tls_x509_verify = 1" in conf, conf
    cert = ssh(rack, host, "openssl x509 -in %s/server-cert.pem -noout -ext subjectAltName -serial -enddate; "
                           "openssl verify -CAfile %s/ca-cert.pem %s/client-cert.pem" % (d, d, d)).stdout
    assert "DNS:%s" % host.name in cert and "IP Address:%s" % host.address in cert and ": OK" in cert, cert
    renew = run_playbook(play, inventory=inv, extra_vars={"kvm_host_pki_renew_days": 400})
    assert renew.rc == 0 and renew.changed() > 0, renew.stdout[-2000:]
    serial = ssh(rack, host, "openssl x509 -in %s/server-cert.pem -noout -serial" % d).stdout
    assert serial.strip() not in cert, (serial, cert)  # a new certificate
    assert "days left" in renew.stdout
    keep = run_playbook(play, inventory=inv)
    assert keep.rc == 0 and keep.changed() == 0, [t["task"] for t in keep.tasks if t["result"].get("changed")]
