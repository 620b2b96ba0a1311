"""Pure helpers of the lab: process bookkeeping, rack bookkeeping, the recap of a site.yml run."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from lab import cli, image, procs, rack


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


def test_suite_defaults_to_trixie_and_refuses_unknown_ones(monkeypatch):
    monkeypatch.delenv("HC_DEBIAN_SUITE", raising=False)
    assert image.default_suite() == "trixie"
    monkeypatch.setenv("HC_DEBIAN_SUITE", "bookworm")
    assert image.default_suite() == "bookworm"
    monkeypatch.setenv("HC_DEBIAN_SUITE", "buster")
    with pytest.raises(ValueError, match="HC_DEBIAN_SUITE=buster: the test bed builds trixie or bookworm"):
        image.default_suite()
    with pytest.raises(ValueError, match="unknown Debian suite 'sid'"):
        image.ensure(suite="sid")


def test_rack_of_another_suite_is_refused_not_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setattr(rack, "STATE", tmp_path)
    (tmp_path / "mine").mkdir()
    # a rack recorded before suites existed: its hosts are bookworm
    (tmp_path / "mine" / "rack.json").write_text(
        '{"name": "mine", "bridge": "hcx0", "subnet": "10.77.99.0/24", "gateway": "10.77.99.1", "hosts": [],'
        ' "ssh_key": "/c/base-bookworm/id_ed25519", "state_dir": "%s"}' % (tmp_path / "mine"))
    assert rack.Rack.load("mine").suite == "bookworm"
    with pytest.raises(rack.RackError, match="rack mine runs Debian bookworm, not trixie: destroy it first"):
        rack.up("mine", hosts=1, subnet="10.77.99.0/24", bridge="hcx0", suite="trixie")
    assert (tmp_path / "mine" / "rack.json").exists()
    assert "hc_base_image_dir=/c/base-bookworm" in rack.Rack.load("mine").inventory()


def test_wait_ssh_retries_a_boot_slower_than_one_attempt(monkeypatch):
    # CI failed when one `systemctl is-system-running --wait` outlasted its 60 s on a loaded machine
    class _Port:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    attempts = []

    def fake_ssh(_rack, _host, command, check=True, timeout=300):  # pylint: disable=unused-argument
        attempts.append(timeout)
        if len(attempts) == 1:
            raise subprocess.TimeoutExpired(["ssh", command], timeout)
        return subprocess.CompletedProcess(["ssh"], 0, "running\n", "")

    monkeypatch.setattr(rack.socket, "create_connection", lambda *a, **kw: _Port())
    monkeypatch.setattr(rack, "ssh", fake_ssh)
    monkeypatch.setattr(rack.time, "sleep", lambda _s: None)
    host = rack.Host(name="hc-x-1", address="10.77.99.11", rack="r1", root="/nonexistent")
    rack._wait_ssh(None, host)  # pylint: disable=protected-access
    assert len(attempts) == 2 and all(5 <= t <= 60 for t in attempts)


def test_power_off_guests_stops_the_cluster_first_and_skips_hosts_that_are_off(monkeypatch):
    hosts = [rack.Host(name="hc-x-%d" % i, address="10.77.99.1%d" % i, rack="r1", root="/nonexistent/%d" % i,
                       pid=100 + i) for i in (1, 2, 3)]
    the_rack = rack.Rack(name="x", subnet="10.77.99.0/24", bridge="hcx0", gateway="10.77.99.1", hosts=hosts,
                         ssh_key="/nonexistent/id", state_dir="/nonexistent")
    monkeypatch.setattr(rack.procs, "owns", lambda pid, root: pid != 102)  # hc-x-2 is powered off
    sent = []

    def fake_ssh(_rack, host, command, check=True, timeout=300):  # pylint: disable=unused-argument
        sent.append((host.name, command))
        if host.name == "hc-x-3":
            raise subprocess.TimeoutExpired(["ssh", command], timeout)
        return subprocess.CompletedProcess(["ssh"], 0, "", "")

    monkeypatch.setattr(rack, "ssh", fake_ssh)
    done = rack.power_off_guests(the_rack)
    assert [name for name, _command in sent] == ["hc-x-1", "hc-x-3"] and done == ["guests of hc-x-1"]
    command = sent[0][1]
    assert command.index("systemctl stop pacemaker") < command.index("virsh -c qemu:///system destroy")


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
    stats = cli._recap("TASK [x]\nok: [hc-lab-1]\n" + RECAP)  # pylint: disable=protected-access
    assert list(stats) == ["hc-lab-1", "hc-lab-2", "hc-lab-3"]
    assert stats["hc-lab-3"]["unreachable"] == 1 and stats["hc-lab-2"]["changed"] == 2
    assert cli._changed(RECAP) == 2  # pylint: disable=protected-access


def test_rack_hosts_keep_roots_user_manager(tmp_path):
    # without it every login stalled while user@0 waited out its stop timeout (cgroup v1 in nspawn)
    rack._linger_root(tmp_path)  # pylint: disable=protected-access
    assert (tmp_path / "var" / "lib" / "systemd" / "linger" / "root").is_file()
