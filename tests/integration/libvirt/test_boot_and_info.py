"""The one real direct-kernel boot of the base image, libvirt_domain_info, and a playbook run."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from conftest import FQCN, cleanup, validate, virsh  # pylint: disable=no-name-in-module

pytestmark = [pytest.mark.libvirt, pytest.mark.timeout(300)]


def _overlay_args(work, base_image, domain_name, libvirt_uri, libvirt_domain_type):
    """A qcow2 overlay on the base image in `work`, and the module arguments booting it."""
    os.chmod(work, 0o755)  # qemu (libvirt-qemu) must reach the overlay
    overlay = work / "root.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(base_image.qcow2),
                    str(overlay)], check=True)
    return overlay, {"name": domain_name, "uri": libvirt_uri, "domain_type": libvirt_domain_type,
                     "state": "running", "vcpus": 1, "memory": 384, "machine": "pc",
                     "boot": {"kernel": str(base_image.kernel), "initrd": str(base_image.initrd),
                              "cmdline": base_image.cmdline + " systemd.unit=multi-user.target"},
                     "disks": [{"path": str(overlay), "target": "vda", "cache": "none"}],
                     "serial_console": True, "serial_log": str(work / "console.log")}


def _wait_for_console(log, needle, seconds):
    text, deadline = "", time.monotonic() + seconds
    while time.monotonic() < deadline and needle not in text:
        time.sleep(1)
        text = log.read_text(errors="replace") if log.exists() else ""
    return text


@pytest.mark.image
@pytest.mark.slow
def test_direct_kernel_boot_of_the_base_image(run_module, base_image, libvirt_uri, libvirt_domain_type,
                                              domain_name, tmp_path):
    work = Path(tempfile.mkdtemp(prefix="hc-test-boot-", dir="/var/tmp"))
    try:
        overlay, args = _overlay_args(work, base_image, domain_name, libvirt_uri, libvirt_domain_type)
        args["shutdown_timeout"] = 0
        res = run_module(FQCN, args, diff=True)
        assert res["changed"] and not res.get("failed"), res
        validate(res["xml"], tmp_path)
        assert virsh(libvirt_uri, "domstate", domain_name).strip() == "running"
        text = _wait_for_console(work / "console.log", "Linux version", 120)
        assert "Linux version" in text, "the guest kernel did not start:\n" + text[-2000:]
        assert run_module(FQCN, args)["changed"] is False
        gone = run_module(FQCN, dict(args, state="absent", remove_storage=True))
        assert gone["changed"] and not overlay.exists()
    finally:
        cleanup(libvirt_uri, domain_name)
        shutil.rmtree(work, ignore_errors=True)


@pytest.mark.image
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_stop_with_the_default_timeout_check_mode_predicts_the_real_calls(
        run_module, base_image, libvirt_uri, libvirt_domain_type, domain_name):
    """Issue #15: a booted Debian guest (TCG) stopped with the DEFAULT shutdown_timeout: the calls
    check mode returns are the calls the real run makes, and the guest shuts itself down (ACPI)."""
    work = Path(tempfile.mkdtemp(prefix="hc-test-stop-", dir="/var/tmp"))
    try:
        dummy, args = _overlay_args(work, base_image, domain_name, libvirt_uri, libvirt_domain_type)
        assert "shutdown_timeout" not in args  # the module's default (120 s)
        assert not run_module(FQCN, args).get("failed")
        text = _wait_for_console(work / "console.log", "login:", 300)
        assert "login:" in text, "the guest did not finish booting:\n" + text[-2000:]
        stop = dict(args, state="shutoff")
        predicted = run_module(FQCN, stop, check=True)
        assert virsh(libvirt_uri, "domstate", domain_name).strip() == "running"
        real = run_module(FQCN, stop)
        assert predicted["changed"] and real["changed"] and predicted["changes"] == real["changes"]
        assert predicted["calls"] == real["calls"] == ["shutdown", "destroy if still running after 120 s"], \
            (predicted["calls"], real["calls"])
        assert real["powered_off"] is False, "the booted guest should shut itself down on the ACPI request"
        assert virsh(libvirt_uri, "domstate", domain_name).strip() == "shut off"
    finally:
        cleanup(libvirt_uri, domain_name)
        shutil.rmtree(work, ignore_errors=True)


def test_domain_info_gives_the_placement_shape(run_module, small, libvirt_uri):
    other = small["name"] + "-b"
    try:
        assert not run_module(FQCN, dict(small, state="running", metadata={"owner": "pacs"}))["failed"]
        assert not run_module(FQCN, dict(small, name=other, vcpus=2, memory=96, autostart=True,
                                         disks=[{"path": "/var/tmp/hc-test-x.qcow2", "target": "vda"}]))["failed"]
        res = run_module("hospital.cloud.libvirt_domain_info", {"uri": libvirt_uri, "host": "kvm-01",
                                                                "names": [small["name"], other, "hc-test-nope"]},
                         check=True)
        assert res["changed"] is False and res["missing"] == ["hc-test-nope"]
        assert res["placement"] == {small["name"]: "kvm-01", other: "kvm-01"}
        first, second = res["domains"]
        assert (first["name"], first["state"], first["vcpus"], first["memory"], first["autostart"],
                first["metadata"]) == (small["name"], "running", 1, 64, False, {"owner": "pacs"})
        assert (second["state"], second["vcpus"], second["memory"], second["autostart"]) == ("shutoff", 2, 96, True)
        assert second["disks"] == [{"target": "vda", "type": "file", "device": "disk",
                                    "source": "/var/tmp/hc-test-x.qcow2", "format": "qcow2"}]
        everything = run_module("hospital.cloud.libvirt_domain_info", {"uri": libvirt_uri})
        assert {small["name"], other} <= set(everything["placement"])
    finally:
        cleanup(libvirt_uri, other)


PLAYBOOK = """
- name: libvirt modules in a play
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Define the VM
      hospital.cloud.libvirt_domain:
        name: "{{ vm }}"
        uri: "{{ uri }}"
        domain_type: "{{ dtype }}"
        vcpus: 1
        memory: 64
        state: running
        shutdown_timeout: 0
        metadata:
          owner: lab
      register: vm_result

    - name: Current placement
      hospital.cloud.libvirt_domain_info:
        uri: "{{ uri }}"
        host: "{{ inventory_hostname }}"
        names: ["{{ vm }}"]
      register: vm_info
"""


def test_playbook_check_diff_then_apply(run_playbook, small, libvirt_uri, libvirt_domain_type):
    ev = {"vm": small["name"], "uri": libvirt_uri, "dtype": libvirt_domain_type}
    checked = run_playbook(PLAYBOOK, extra_vars=ev, check=True, diff=True)
    assert checked.rc == 0, checked.stdout[-3000:] + checked.stderr
    res = checked.result("Define the VM", "localhost")
    assert res["changed"] is True and res["diff"]["after"]["metadata"] == {"owner": "lab"}
    assert res["diff"]["before"] == {"state": "absent"}
    assert small["name"] not in virsh(libvirt_uri, "list", "--all", "--name").split()
    applied = run_playbook(PLAYBOOK, extra_vars=ev, diff=True)
    assert applied.rc == 0 and applied.changed("localhost") == 1
    assert applied.result("Current placement", "localhost")["placement"] == {small["name"]: "localhost"}
    again = run_playbook(PLAYBOOK, extra_vars=ev, check=True, diff=True)
    assert again.rc == 0 and again.changed("localhost") == 0
