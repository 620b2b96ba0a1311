"""testinfra checks of kvm_host converged inside a libvirt guest (molecule kvm scenario)."""

from __future__ import annotations

import os

import testinfra.utils.ansible_runner

TESTINFRA_HOSTS = testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"]).get_hosts("all")

SMOKE = ("<domain type='qemu'><name>hc-molkvm-smoke</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>"
         "<os><type arch='x86_64' machine='pc'>hvm</type></os><features><acpi/></features></domain>")


def test_packages_and_daemon(host):
    for pkg in ("qemu-system-x86", "libvirt-daemon-system", "bridge-utils", "python3-libvirt"):
        assert host.package(pkg).is_installed, pkg
    libvirtd = host.service("libvirtd")
    assert libvirtd.is_running and libvirtd.is_enabled


def test_bridge_for_vm_traffic(host):
    br = host.interface("br-vm")
    assert br.exists
    assert host.file("/sys/class/net/br-vm/bridge").is_directory


def test_libvirt_offers_tcg(host):
    caps = host.check_output("virsh -c qemu:///system capabilities")
    assert "<domain type='qemu'" in caps


def test_tcg_domain_starts_inside_the_guest(host):
    """No KVM inside a TCG guest: the TCG fallback the role allowed must really start a domain."""
    host.run("virsh -c qemu:///system destroy hc-molkvm-smoke; virsh -c qemu:///system undefine hc-molkvm-smoke")
    host.check_output("printf %%s \"%s\" > /tmp/hc-smoke.xml && virsh -c qemu:///system define /tmp/hc-smoke.xml"
                      " && virsh -c qemu:///system start hc-molkvm-smoke" % SMOKE)
    try:
        assert host.check_output("virsh -c qemu:///system domstate hc-molkvm-smoke").strip() == "running"
    finally:
        host.run("virsh -c qemu:///system destroy hc-molkvm-smoke; virsh -c qemu:///system undefine hc-molkvm-smoke")
