"""Pure helpers of the test bed."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from testbed import ceph, clocks, lab, libvirt, procs


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


def test_stop_all_only_signals_processes_that_name_the_directory(tmp_path):
    root = tmp_path / "comp"
    procs.claim(root)
    with open(tmp_path / "log", "ab") as log:
        pid = procs.spawn(root, "sleeper", [sys.executable, "-c", "import time; time.sleep(60)", str(root)], log)
    # a foreign process whose PID gets recorded must never be touched
    foreign = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # pylint: disable=consider-using-with
    (root / "pids" / "foreign").write_text(str(foreign.pid))
    try:
        stopped = procs.stop_all(root, timeout=5)
        assert stopped == [pid]
        assert not procs.alive(pid)
        assert procs.alive(foreign.pid)
    finally:
        foreign.kill()
        foreign.wait()


def test_reap_stale_cleans_dead_owner_and_keeps_live_owner(tmp_path):
    dead = tmp_path / "ceph-dead"
    live = tmp_path / "ceph-live"
    child = subprocess.Popen([sys.executable, "-c", "pass"])  # pylint: disable=consider-using-with
    child.wait()
    procs.claim(dead, owner=child.pid)
    procs.claim(live, owner=os.getpid())
    cleaned = procs.reap_stale(tmp_path, "ceph-")
    assert cleaned == [dead]
    assert live.exists() and not dead.exists()


def test_rack_refuses_a_subnet_or_bridge_of_another_rack(tmp_path, monkeypatch):
    from testbed import rack  # pylint: disable=import-outside-toplevel

    monkeypatch.setattr(rack, "STATE", tmp_path)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "rack.json").write_text(
        '{"name": "other", "bridge": "hcx0", "subnet": "10.77.99.0/24", "gateway": "10.77.99.1", "hosts": [],'
        ' "ssh_key": "k", "state_dir": "%s"}' % (tmp_path / "other"))
    for kw in ({"subnet": "10.77.99.0/24", "bridge": "hcy0"}, {"subnet": "10.77.98.0/24", "bridge": "hcx0"}):
        try:
            rack.up("mine", hosts=1, **kw)
        except rack.RackError as exc:
            assert "already belong to rack other" in str(exc)
        else:
            raise AssertionError("rack.up accepted %r" % kw)
    assert not (tmp_path / "mine").exists()


RECAP = """PLAY RECAP *********************************************************************
hc-lab-1                   : ok=112  changed=0    unreachable=0    failed=0    skipped=36   rescued=0    ignored=0
hc-lab-2                   : ok=85   changed=2    unreachable=0    failed=0    skipped=32   rescued=0    ignored=0
hc-lab-3                   : ok=3    changed=0    unreachable=1    failed=0    skipped=0    rescued=0    ignored=0


TASKS RECAP ********************************************************************
Monday 30 November 2026  09:38:29 +0000 (0:00:00.109)       0:01:51.749 *******
===============================================================================
hospital.cloud.ceph : Monitors | bootstrap keys on every monitor -------- 5.32s
"""


def test_lab_recap_parses_hosts_only_and_sums_changed():
    stats = lab._recap("TASK [x]\nok: [hc-lab-1]\n" + RECAP)  # pylint: disable=protected-access
    assert list(stats) == ["hc-lab-1", "hc-lab-2", "hc-lab-3"]
    assert stats["hc-lab-3"]["unreachable"] == 1 and stats["hc-lab-2"]["changed"] == 2
    assert lab._changed(RECAP) == 2  # pylint: disable=protected-access
