"""Smoke tests proving each test-bed component is real (they run in CI; none is skipped)."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from lab import image
from testbed.libvirt import virsh

pytestmark = pytest.mark.timeout(600)


@pytest.fixture
def domain_name(libvirt_uri):
    name = "hc-test-smoke-%s" % uuid.uuid4().hex[:8]
    yield name
    virsh(libvirt_uri, "destroy", name, check=False)
    virsh(libvirt_uri, "undefine", name, "--nvram", check=False)


def _define(uri, xml: str, tmp: Path) -> None:
    path = tmp / "domain.xml"
    path.write_text(xml)
    res = subprocess.run(["virt-xml-validate", str(path), "domain"], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr + res.stdout
    virsh(uri, "define", str(path))


@pytest.mark.libvirt
def test_libvirt_runs_a_tcg_domain(libvirt_uri, libvirt_domain_type, domain_name, tmp_path):
    """A diskless TCG domain starts and `virsh list` shows it running."""
    assert libvirt_domain_type in ("kvm", "qemu")
    xml = """<domain type='%s'><name>%s</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
      <os><type arch='x86_64' machine='pc'>hvm</type></os><features><acpi/></features>
      <devices><emulator>/usr/bin/qemu-system-x86_64</emulator></devices></domain>""" % (
        "qemu", domain_name)
    _define(libvirt_uri, xml, tmp_path)
    virsh(libvirt_uri, "start", domain_name)
    time.sleep(1)
    listed = virsh(libvirt_uri, "list", "--state-running", "--name").split()
    assert domain_name in listed
    assert virsh(libvirt_uri, "domstate", domain_name).strip() == "running"


@pytest.mark.libvirt
@pytest.mark.image
@pytest.mark.slow
def test_base_image_boots_under_tcg(libvirt_uri, base_image, domain_name):
    """The cached base image direct-boots its own kernel under TCG and reaches a login prompt."""
    assert (base_image.rootfs / "lib/systemd/systemd").exists()
    assert (base_image.rootfs / "usr/bin/python3").exists()
    work = Path(tempfile.mkdtemp(prefix="hc-smoke-", dir="/var/tmp"))
    os.chmod(work, 0o755)
    try:
        overlay = work / "disk.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b",
                        str(base_image.qcow2), str(overlay)], check=True)
        console = work / "console.log"
        xml = """<domain type='qemu'><name>{n}</name><memory unit='MiB'>384</memory><vcpu>1</vcpu>
          <os><type arch='x86_64' machine='pc'>hvm</type><kernel>{k}</kernel><initrd>{i}</initrd>
          <cmdline>{c} systemd.unit=multi-user.target</cmdline></os>
          <features><acpi/></features>
          <devices><emulator>/usr/bin/qemu-system-x86_64</emulator>
            <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='{d}'/>
              <target dev='vda' bus='virtio'/></disk>
            <serial type='file'><source path='{log}'/><target port='0'/></serial>
          </devices></domain>""".format(n=domain_name, k=base_image.kernel, i=base_image.initrd,
                                        c=base_image.cmdline, d=overlay, log=console)
        _define(libvirt_uri, xml, work)
        virsh(libvirt_uri, "start", domain_name)
        deadline = time.monotonic() + 240
        text = ""
        while time.monotonic() < deadline:
            text = console.read_text(errors="replace") if console.exists() else ""
            if "login:" in text:
                break
            time.sleep(2)
        assert "login:" in text, "no login prompt on the serial console:\n" + text[-3000:]
        # The release the image was built from (HC_DEBIAN_SUITE) is the one that boots, not a stale cache.
        version = re.search(r'^VERSION_ID="?(\d+)', (base_image.rootfs / "etc/os-release").read_text(), re.M).group(1)
        assert version == {"trixie": "13", "bookworm": "12"}[image.default_suite()]
        assert "Debian GNU/Linux %s" % version in text
    finally:
        virsh(libvirt_uri, "destroy", domain_name, check=False)
        subprocess.run(["rm", "-rf", str(work)], check=False)


@pytest.mark.ceph
def test_ceph_is_healthy_and_stores_data(ceph_cluster, tmp_path):
    """The cluster reaches HEALTH_OK with 3 OSDs and a rados put/get round-trips."""
    status = ceph_cluster.cli_json("status")
    osdmap = status["osdmap"].get("osdmap", status["osdmap"])
    assert osdmap["num_up_osds"] == 3 and osdmap["num_in_osds"] == 3
    assert status["health"]["status"] == "HEALTH_OK"
    pool = "hc-smoke"
    ceph_cluster.cli("osd", "pool", "create", pool, "8")
    ceph_cluster.cli("osd", "pool", "application", "enable", pool, "rados")
    payload = os.urandom(256 * 1024)
    src, dst = tmp_path / "in.bin", tmp_path / "out.bin"
    src.write_bytes(payload)
    base = ["rados", "--conf", ceph_cluster.conf, "--keyring", ceph_cluster.keyring, "-p", pool]
    subprocess.run(base + ["put", "blob", str(src)], check=True, timeout=60)
    subprocess.run(base + ["get", "blob", str(dst)], check=True, timeout=60)
    assert dst.read_bytes() == payload
    r = ceph_cluster.rados()
    try:
        with r.open_ioctx(pool) as io:
            assert io.read("blob", length=len(payload)) == payload
            io.write_full("py", b"from librados")
            assert io.read("py") == b"from librados"
    finally:
        r.shutdown()
    ceph_cluster.wait_health_ok(timeout=120, osds=3)


def test_run_playbook_reports_per_task_results(run_playbook):
    """The playbook runner really runs ansible-playbook and parses the json callback."""
    res = run_playbook("""
- name: Smoke
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Say
      ansible.builtin.command: echo hello
      changed_when: true
""")
    assert res.rc == 0, res.stderr
    assert res.result("Say", "localhost")["stdout"] == "hello"
    assert res.changed("localhost") == 1


def test_run_module_runs_module_code(run_module):
    """run_module executes real module code and returns its JSON, including failures."""
    out = run_module("community.general.ini_file", {"path": "/nonexistent/dir/x.ini", "section": "a",
                                                    "option": "b", "value": "c", "create": False})
    assert out["failed"] is True
    assert "nonexistent" in out["msg"] or "Destination" in out["msg"]


@pytest.mark.libvirt
def test_libvirt_keeps_its_qemu_capabilities_between_defines(libvirt_uri, domain_name, tmp_path):
    """libvirtd probes QEMU once, not on every define (where /dev/kvm's group did not match libvirt's QEMU
    user, each define re-probed: 32 s; see testbed.libvirt.align_kvm_device_group)."""
    cache = Path("/var/cache/libvirt/qemu/capabilities")
    xml = """<domain type='qemu'><name>%s</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
      <os><type arch='x86_64' machine='pc'>hvm</type></os></domain>""" % domain_name
    _define(libvirt_uri, xml, tmp_path)  # the first define may probe (a cold daemon)
    before = {p.name: p.stat().st_mtime_ns for p in cache.glob("*.xml")}
    t0 = time.monotonic()
    virsh(libvirt_uri, "undefine", domain_name)
    _define(libvirt_uri, xml, tmp_path)
    virsh(libvirt_uri, "undefine", domain_name)
    _define(libvirt_uri, xml, tmp_path)
    elapsed = time.monotonic() - t0
    assert before and {p.name: p.stat().st_mtime_ns for p in cache.glob("*.xml")} == before, \
        "libvirtd probed QEMU again (capabilities cache rewritten); two defines took %.1f s" % elapsed
