"""Pure helpers of the test bed."""

from __future__ import annotations

import grp
import os
import pwd
import socket
import sys
from pathlib import Path

import pytest

from testbed import ceph, clocks, collections_check, guest, libvirt, poll


def test_kvm_usable_rejects_pvm_and_missing_flags(tmp_path):
    dev = tmp_path / "kvm"
    dev.write_text("")
    mods = tmp_path / "module"
    mods.mkdir()
    vmx = "flags\t\t: fpu vme vmx sse\n"
    assert libvirt.kvm_usable(cpuinfo=vmx, sys_module=str(mods), dev=str(dev)) is True
    assert libvirt.kvm_usable(cpuinfo="flags : fpu sse\n", sys_module=str(mods), dev=str(dev)) is False
    (mods / "kvm_pvm").mkdir()
    assert libvirt.kvm_usable(cpuinfo=vmx, sys_module=str(mods), dev=str(dev)) is False
    assert libvirt.kvm_usable(cpuinfo=vmx, sys_module=str(tmp_path / "none"), dev=str(tmp_path / "nodev")) is False


def test_boot_report_says_how_far_a_guest_got_in_a_few_lines(tmp_path):
    log = tmp_path / "console.log"
    log.write_text("[    0.000000] Linux version 6.1.0\n" + "".join("[    1.%06d] noise %d\n" % (i, i) for i in range(50))
                   + "[    1.555] Run /init as init process\n[\x1b[0;32m  OK  \x1b[0m] Reached target network.target\n"
                   + "x" * 400 + "\n")
    # libvirt's test driver: no daemon, a 'default' network without leases, no domain of that name
    text = libvirt.boot_report("hc-test-nope", str(log), "default", "52:54:00:00:00:01", uri="test:///default")
    lines = text.splitlines()
    assert lines[0].startswith("domain hc-test-nope: ") and lines[0].endswith("DHCP lease for 52:54:00:00:00:01: none")
    assert lines[1].endswith("reached: kernel, initramfs, network")  # in boot order, ANSI colours stripped
    console = [line for line in lines if line.startswith("  console| ")]
    assert console[-2] == "  console| [  OK  ] Reached target network.target"
    assert len(console) == 6 and len(console[-1]) == len("  console| ") + 160
    missing = libvirt.boot_report("hc-test-nope", str(tmp_path / "none.log"), "default", "52:54:00:00:00:01",
                                  uri="test:///default")
    assert "0 bytes; reached: nothing" in missing and "No such file" in missing
    assert "clocks:" not in missing


def test_boot_report_compares_the_wall_clock_with_the_boot_clock(tmp_path):
    wall, boot = clocks.now()
    uptime = boot - 300.0  # the wait began 300 s ago
    args = ("hc-test-nope", str(tmp_path / "none.log"), "default", "52:54:00:00:00:01")
    steady = libvirt.boot_report(*args, uri="test:///default", wall_since=wall - 300.0, uptime_since=uptime)
    [line] = [line for line in steady.splitlines() if line.startswith("clocks: ")]
    assert line.startswith("clocks: the wait took 300.") and "by the boot clock" in line and "moved" not in line
    # the wall clock stepped 600 s forward during the wait
    stepped = libvirt.boot_report(*args, uri="test:///default", wall_since=wall - 900.0, uptime_since=uptime)
    [line] = [line for line in stepped.splitlines() if line.startswith("clocks: ")]
    assert abs(float(line.split("; the wall clock moved ")[1].rstrip(" s")) - 600.0) < 1.0


def test_free_ports_are_distinct_and_bindable():
    ports = ceph.free_ports(3)
    assert len(set(ports)) == 3
    for p in ports:
        s = socket.socket()
        s.bind(("127.0.0.1", p))
        s.close()


def test_collections_check_names_missing_and_out_of_range_collections():
    need = {"a.b": (">=2.0.0,<3.0.0", "galaxy.yml"), "c.d": ("*", "tests/requirements.yml"),
            "e.f": (">=1.0.0", "tests/requirements.yml")}
    assert collections_check.problems(need, {"a.b": "2.1.0", "c.d": "0.1.0", "e.f": "1.0.0"}) == []
    assert collections_check.problems(need, {"a.b": "3.0.0", "e.f": "1.0.0"}) == [
        "a.b >=2.0.0,<3.0.0 (galaxy.yml): 3.0.0 installed", "c.d * (tests/requirements.yml): not installed"]
    # this checkout: every collection galaxy.yml and tests/requirements.yml name is installed in the venv
    have = collections_check.installed(str(Path(sys.executable).parent / "ansible-galaxy"))
    assert collections_check.problems(collections_check.required(), have) == []
    assert {"community.libvirt", "ansible.posix"} <= set(collections_check.required())


def test_kvm_device_group_aligned_with_libvirts_qemu_user_once(tmp_path):
    """A device in a group libvirt's QEMU user is not in gets the user's group; then nothing to do."""
    user = pwd.getpwuid(os.getuid()).pw_name
    mine = {g.gr_gid for g in grp.getgrall() if user in g.gr_mem} | {os.getgid()}
    other = next((g for g in grp.getgrall() if g.gr_gid not in mine), None)
    if os.getuid() != 0 or other is None:
        pytest.skip("needs root (chown to another group) and a group the user is not in")
    dev = tmp_path / "kvm"
    dev.write_text("")
    os.chown(dev, -1, other.gr_gid)
    target = grp.getgrgid(os.getgid()).gr_name
    assert libvirt.align_kvm_device_group(str(dev), group=target, qemu_user=user) is True
    assert dev.stat().st_gid == os.getgid()
    assert libvirt.align_kvm_device_group(str(dev), group=target, qemu_user=user) is False
    assert libvirt.align_kvm_device_group(str(tmp_path / "absent"), group=target, qemu_user=user) is False


def test_test_file_basenames_are_unique():
    """pytest (rootdir-relative imports, no __init__.py) refuses two test files with one basename: the whole
    run stops at collection (CI failed so once: unit and integration test_ceph_info.py)."""
    tests = Path(__file__).resolve().parents[2]
    seen: dict[str, list[str]] = {}
    for path in tests.rglob("test_*.py"):
        if "output" not in path.relative_to(tests).parts:
            seen.setdefault(path.name, []).append(str(path.relative_to(tests)))
    assert not {k: v for k, v in seen.items() if len(v) > 1}


def test_poll_returns_the_first_true_value_and_names_what_timed_out():
    seen = iter([0, [], "ready"])
    assert poll.wait_for(lambda: next(seen), 5, "a value", interval=0.01) == "ready"
    assert poll.seconds_until(lambda: True, 5, "nothing") < 1
    with pytest.raises(AssertionError, match=r"timed out after 0.2s waiting for the guest \(last: 0\); console: x"):
        poll.wait_for(lambda: 0, 0.2, "the guest", interval=0.05, details=lambda: "console: x")


def test_a_guest_console_is_read_for_counts_and_for_failure_messages(tmp_path):
    log = tmp_path / "console.log"
    assert guest.counts(log) == [] and guest.console_tail(log) == "no console log at %s" % log
    log.write_bytes(b"boot\nhc-count 7\nhc-count 8\n")
    assert guest.counts(log) == [7, 8]
    assert guest.console_tail(log, size=11) == "console: b'hc-count 8\\n'"
