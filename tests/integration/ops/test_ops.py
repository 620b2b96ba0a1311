"""Day-2 job templates run through ansible-runner (the engine AWX uses) against the ops tier's rack (conftest.py).

Deploy site -> capacity report -> host maintenance (check mode, refusals, the real run, a second run) -> (the HA
tests of test_ops_ha.py) -> add a fourth host. Guests are idle TCG VMs (init=/bin/sh after the root mount from their
RBD clone).
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from lab import rack as rackmod
from testbed.pcap_marker import count_marker
from integration.ops.opsrack import MARKER, NAME, VIRSH, Ops, assert_ok, assert_refused, run_job

pytestmark = [pytest.mark.image, pytest.mark.ceph, pytest.mark.slow, pytest.mark.timeout(3600)]

VMS = ("ops-a", "ops-b", "ops-c")
MARK = "/etc/ansible/facts.d/hospital_cloud_maintenance.fact"
FIGURES: dict = {}
KEY_COMMENT = "hospital.cloud host_maintenance migration key"
MIGRATION_PORTS = range(49152, 49216)  # QEMU's migration ports (libvirt's default range)
OTHER_KEY = "AAAAC3NzaC1lZDI1NTE5AAAAIJSHvS7J3OZiFv6A2uXoE0sZbBc2rEYcbdwv3aR8Cl3F"  # an ed25519 key no host has


@pytest.fixture(scope="module", autouse=True)
def figures():
    yield FIGURES
    print("ops figures: %s" % json.dumps(FIGURES))


def _steady(ops: Ops) -> dict:
    """Where the VMs run now; asserts every declared VM runs exactly once and is defined once."""
    doms = ops.domains()
    for vm in VMS:
        assert vm in doms, (vm, doms)
        assert len(doms[vm]["running"]) == 1 and doms[vm]["defined"] == doms[vm]["running"], (vm, doms)
    return {vm: doms[vm]["running"][0] for vm in VMS}


def test_deploy_site(ops):
    job = run_job(ops, "site.yml", name="deploy-site")
    FIGURES["deploy_site_s"] = round(job.seconds)
    assert_ok(job)
    assert job.changed() > 0
    assert set(ops.hosts) <= set(job.stats["ok"]), job.stats
    where = _steady(ops)
    assert where["ops-a"] != where["ops-b"]  # anti-affinity
    assert ops.ceph("health")["status"] == "HEALTH_OK"


def test_monitoring_every_target_up(ops):
    """site.yml deployed Prometheus and Alertmanager on hc-ops-1 and an exporter per target the inventory
    implies; every one of them is scraped (issue #18)."""
    expected = ({("node", h) for h in ops.hosts} | {("libvirt", h) for h in ops.hosts}
                | {("ceph", "hc-ops-1"), ("prometheus", "hc-ops-1"), ("alertmanager", "hc-ops-1")})
    deadline = time.monotonic() + 120
    while True:
        health = {(t["labels"]["job"], t["labels"]["host"]): t["health"]
                  for t in ops.api(9090, "/api/v1/targets")["data"]["activeTargets"]}
        if set(health) == expected and set(health.values()) == {"up"}:
            break
        assert time.monotonic() < deadline, "scrape targets after 120 s: %s (expected %s)" % (health, expected)
        time.sleep(2)
    # the listeners are on the management address only
    for port in (9100, 9177):
        out = ops.sh("hc-ops-2", "ss -Hltn 'sport = :%d'" % port)
        assert out.split() and out.split()[3] == "%s:%d" % (ops.host("hc-ops-2").address, port), out


def test_alert_osd_down_reaches_the_webhook(ops):
    """An OSD stopped: CephOsdDown (host= the OSD's host) reaches the webhook, then resolves once it is back."""
    host = "hc-ops-3"
    osd = ops.osd_of(host)
    labels = {"alertname": "CephOsdDown", "ceph_daemon": "osd.%d" % osd, "host": host}
    t0 = time.monotonic()
    ops.sh(host, "systemctl stop ceph-osd@%d" % osd)
    try:
        FIGURES["alert_osd_down_firing_s"] = ops.webhook.wait(t0, "firing", 240, **labels)
    finally:
        t1 = time.monotonic()
        ops.sh(host, "systemctl start ceph-osd@%d" % osd)
    FIGURES["alert_osd_down_resolved_s"] = ops.webhook.wait(t1, "resolved", 240, **labels)
    assert _healthy(ops)


def test_alert_vm_not_running(ops):
    """A VM's qemu killed (by its PID): VmNotRunning reaches the webhook; started again, it resolves."""
    vm = "ops-c"
    host = _steady(ops)[vm]
    t0 = time.monotonic()
    ops.sh(host, "kill -9 $(cat /run/libvirt/qemu/%s.pid)" % vm)
    try:
        FIGURES["alert_vm_not_running_firing_s"] = ops.webhook.wait(t0, "firing", 240, alertname="VmNotRunning",
                                                                    domain=vm)
    finally:
        t1 = time.monotonic()
        ops.sh(host, VIRSH + "start " + vm)
        FIGURES["vm_restart_s"] = round(time.monotonic() - t1, 1)
    # resolved counts from the start command: a TCG guest's start on the loaded 2-core machine is part of it
    FIGURES["alert_vm_not_running_resolved_s"] = ops.webhook.wait(t1, "resolved", 240, alertname="VmNotRunning",
                                                                  domain=vm)
    _steady(ops)


def test_no_guest_data_in_any_label(ops):
    """Every label value in Prometheus' TSDB: the guests' RAM marker (their kernel command line) is nowhere,
    and no label is about a patient or a study."""
    names = ops.api(9090, "/api/v1/labels")["data"]
    assert not [n for n in names if re.search(r"patient|study|accession|cmdline", n, re.I)], names
    values = {n: ops.api(9090, "/api/v1/label/%s/values" % n)["data"] for n in names}
    assert sum(len(v) for v in values.values()) > 50, values  # the scan saw the rack's series
    hits = {n: [v for v in vs if MARKER in v or "hc.marker" in v] for n, vs in values.items()}
    assert not any(hits.values()), hits


def test_capacity_report(ops):
    job = run_job(ops, "capacity_report.yml", name="capacity-report")
    FIGURES["capacity_report_s"] = round(job.seconds)
    assert_ok(job)
    report = job.artifacts()["capacity_report"]
    out = Path(report["dir"])
    # the files land in the job's artifact directory (ansible-runner sets AWX_ISOLATED_DATA_DIR)
    assert out.parent == Path(job.runner.config.artifact_dir), out
    md = (out / "capacity.md").read_text()
    assert (out / "capacity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    where = _steady(ops)
    for host in ops.hosts:  # one row per host: | host | rack | VMs | vCPU | RAM | Disk |
        row = next(line for line in md.splitlines() if line.startswith("| %s " % host))
        assert row.split("|")[3].strip() == str(sum(1 for h in where.values() if h == host)), row
    plan = json.loads((out / "plan.json").read_text())
    assert plan["assignment"] == where and plan["moves"] == []  # the running VMs stay where they are
    assert sorted(plan["hosts"]) == ops.hosts
    assert report["summary"]["vms"] == 3 and report["markdown"] == md
    # live usage from the rack's Prometheus (issue #18): every host's CPU and RAM now, Ceph raw used
    live = report["live_usage"]
    assert set(live["hosts"]) == set(ops.hosts) and all(set(u) == {"cpu", "memory"} for u in live["hosts"].values()), live
    assert all(0 <= v <= 100 for u in live["hosts"].values() for v in u.values()) and 0 < live["ceph_used"] < 100, live
    assert "## Live usage (Prometheus)" in md and "Ceph raw capacity used: %.1f %%." % live["ceph_used"] in md
    FIGURES["capacity_report_files"] = sorted(p.name for p in out.iterdir())


def _healthy(ops: Ops, timeout: float = 180) -> bool:
    deadline = time.monotonic() + timeout
    while ops.ceph("health")["status"] != "HEALTH_OK":
        if time.monotonic() > deadline:
            return False
        time.sleep(2)
    return True


def _busiest(ops: Ops) -> str:
    where = _steady(ops)
    return max(ops.hosts, key=lambda h: (sum(1 for v in where.values() if v == h), h == where["ops-a"]))


def _noout(ops: Ops, host: str) -> bool:
    return "noout" in ops.ceph("osd", "dump").get("crush_node_flags", {}).get(host, [])


def test_maintenance_check_mode_and_refusals(ops):
    host = _busiest(ops)
    before = _steady(ops)
    # check mode predicts the moves and changes nothing
    job = run_job(ops, "maintenance.yml", {"host_maintenance_host": host}, check=True, name="maintenance-check")
    assert_ok(job)
    assert job.changed() > 0
    assert "would move" in job.stdout and "would mark %s in maintenance" % host in job.stdout
    assert _steady(ops) == before and not _noout(ops, host)
    assert ops.sh(host, "test -e %s && echo marked || echo clean" % MARK).strip() == "clean"

    # Ceph not healthy: refused before anything changes
    ops.sh("hc-ops-1", "ceph osd set noscrub")
    try:
        job = run_job(ops, "maintenance.yml", {"host_maintenance_host": host}, name="maintenance-unhealthy")
        assert_refused(job, "Ceph is HEALTH_WARN, not HEALTH_OK")
    finally:
        ops.sh("hc-ops-1", "ceph osd unset noscrub")
    assert _healthy(ops)

    # no room: the other hosts keep all but 300 MiB for themselves (a full rack)
    mem = int(ops.sh(host, "awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo"))
    job = run_job(ops, "maintenance.yml", {"host_maintenance_host": host, "kvm_host_reserved_memory_mib": mem - 300},
                  name="maintenance-no-room")
    assert_refused(job, "the rest of the rack cannot hold the VMs of %s" % host)
    refusal = re.search(r'"msg": "(Refused[^"]*)"', job.stdout).group(1)
    assert "(%s): vm " % ", ".join(vm for vm, h in before.items() if h == host) in refusal, refusal  # the filter's reason

    assert _steady(ops) == before and not _noout(ops, host)
    assert ops.sh(host, "test -e %s && echo marked || echo clean" % MARK).strip() == "clean"
    assert _healthy(ops)


def test_maintenance(ops):
    host = _busiest(ops)
    before = _steady(ops)
    leaving = sorted(vm for vm, h in before.items() if h == host)
    # a migration key left authorised by a killed job (this host was its target): removed by the next run
    stale = "ssh-ed25519 %s %s" % (OTHER_KEY, KEY_COMMENT)
    ops.sh(host, "echo '%s' >> /root/.ssh/authorized_keys" % stale)
    with ops.capture("maintenance") as cap:
        job = run_job(ops, "maintenance.yml", {"host_maintenance_host": host}, name="maintenance")
    FIGURES["maintenance_s"] = round(job.seconds)
    assert_ok(job)
    hits = count_marker(cap.path, MARKER.encode())
    FIGURES["maintenance_capture_mib"] = round(cap.path.stat().st_size / 2 ** 20, 1)
    assert hits == {}, "guest RAM in the clear on the bridge during the live migrations: %s" % hits
    assert KEY_COMMENT not in ops.sh(host, "cat /root/.ssh/authorized_keys"), "stale migration key kept"
    # the migration key authorised on the targets: the libvirt helper only, from the source only, for a short time
    lines = [e["event_data"]["res"]["invocation"]["module_args"]["line"] for e in job.events
             if e.get("event") == "runner_item_on_ok"
             and e["event_data"].get("task", "").startswith("Migration key | authorised on the targets")]
    assert lines, "no migration key was authorised"
    for line in lines:
        opts = line.split(" ssh-ed25519 ")[0]
        assert opts.startswith("restrict,") and 'from="%s"' % ops.host(host).address in opts, line
        assert 'command="/usr/bin/virt-ssh-helper qemu:///system"' in opts, line
        expiry = re.search(r'expiry-time="(\d{14})Z"', opts)
        assert expiry, line
        left = time.mktime(time.strptime(expiry.group(1), "%Y%m%d%H%M%S")) - time.mktime(time.gmtime())
        assert 0 < left < 3 * 600 + 300 + 3600, left  # now + moves x timeout + 5 min (an hour of slack for the run)
    report = job.artifacts()["host_maintenance"]
    FIGURES["maintenance_moves"] = report["moves"]
    assert sorted(m["vm"] for m in report["moves"]) == leaving
    assert report["noout_set_during_run"] and report["returned"]
    assert "osd set-group noout" in job.stdout or any(
        "set-group noout" in json.dumps(e["event_data"].get("res", {})) for e in job.events)

    after = _steady(ops)  # none lost: every VM runs exactly once
    assert host not in after.values(), after
    for vm in before:
        if vm not in leaving:
            assert after[vm] == before[vm]  # the others stay put
    for m in report["moves"]:
        assert after[m["vm"]] == m["to"]
        assert ops.sh(m["to"], VIRSH + "dominfo %s | grep -i '^autostart:'" % m["vm"]).split()[-1] == "enable"
    assert after["ops-a"] != after["ops-b"]  # anti-affinity still holds
    assert ops.ceph("health")["status"] == "HEALTH_OK" and not _noout(ops, host)
    assert ops.sh(host, "test -e %s && echo marked || echo clean" % MARK).strip() == "clean"
    # the host's alerts were silenced for the window, and the silence is gone now that it is back
    assert ops.silences(host, "expired") and not ops.silences(host), ops.api(9093, "/api/v2/silences")

    again = run_job(ops, "maintenance.yml", {"host_maintenance_host": host}, name="maintenance-again")
    assert_ok(again)
    assert again.changed() == 0, again.changed_tasks()
    assert "nothing to do" in again.stdout
    assert _steady(ops) == after


def _tls_force(ops: Ops, hosts: list[str], value: int) -> None:
    for h in hosts:
        ops.sh(h, "sed -i 's/^migrate_tls_force = .*/migrate_tls_force = %d/' /etc/libvirt/qemu.conf && "
                  "systemctl restart libvirtd && for i in $(seq 30); do %s version >/dev/null 2>&1 && break; "
                  "sleep 1; done" % (value, VIRSH))


def _virsh_migrate(ops: Ops, vm: str, src: str, dst: str, tls: bool) -> subprocess.CompletedProcess:
    """A managed (non-p2p) live migration driven from this machine: the memory goes src -> dst directly."""
    wrapper = ops.tmp / "ssh-verified"
    if not wrapper.exists():  # libvirt's ssh transport with the rack's known_hosts, host keys verified
        wrapper.write_text("#!/bin/sh\nexec ssh %s \"$@\"\n" % " ".join(ops.rack.ssh_options()))
        wrapper.chmod(0o755)
    uri = "qemu+ssh://root@%%s/system?keyfile=%s&no_tty=1&command=%s" % (ops.rack.ssh_key, wrapper)
    cmd = ["virsh", "-c", uri % ops.host(src).address, "migrate", "--live", "--persistent", "--undefinesource",
           *(["--tls"] if tls else []), vm, uri % ops.host(dst).address,
           "--migrateuri", "tcp://%s" % ops.host(dst).address]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)


def test_migration_encrypted_and_plain_control(ops):
    """Guest RAM never crosses the bridge in the clear; the control run with TLS off shows the capture sees it.

    The plain migration exists only here: qemu.conf's migrate_tls_force is turned off for it, then restored.
    """
    where = _steady(ops)
    vm, src = "ops-c", where["ops-c"]
    dst = next(h for h in ops.hosts if h not in where.values()) if len(set(where.values())) < len(ops.hosts) \
        else next(h for h in ops.hosts if h != src)
    # forced: a migration without --tls is refused while migrate_tls_force = 1
    res = _virsh_migrate(ops, vm, src, dst, tls=False)
    assert res.returncode != 0 and "tls" in res.stderr.lower(), res.stderr
    assert _steady(ops)[vm] == src
    _tls_force(ops, [src, dst], 0)
    try:
        with ops.capture("plain") as cap:
            t0 = time.monotonic()
            res = _virsh_migrate(ops, vm, src, dst, tls=False)
            FIGURES["migration_plain_s"] = round(time.monotonic() - t0, 2)
        assert res.returncode == 0, res.stderr
    finally:
        _tls_force(ops, [src, dst], 1)
    plain = count_marker(cap.path, MARKER.encode())
    FIGURES["migration_plain_marker_hits"] = sum(plain.values())
    assert any(k[3] in MIGRATION_PORTS for k in plain), "the capture did not see the plain migration: %s" % plain
    assert _steady(ops)[vm] == dst
    with ops.capture("tls") as cap:
        t0 = time.monotonic()
        res = _virsh_migrate(ops, vm, dst, src, tls=True)
        FIGURES["migration_tls_s"] = round(time.monotonic() - t0, 2)
    assert res.returncode == 0, res.stderr
    assert count_marker(cap.path, MARKER.encode()) == {}
    assert _steady(ops) == where
    print("live migration of %s (256 MiB, TCG): plain %.2f s, TLS %.2f s" % (
        vm, FIGURES["migration_plain_s"], FIGURES["migration_tls_s"]))


def test_host_keys_verified(ops):
    """Host keys are checked, never trusted on first use: by this machine and between the KVM hosts."""
    a, b = ops.host("hc-ops-1"), ops.host("hc-ops-2")
    # the rack's known_hosts (the inventory's UserKnownHostsFile) holds each host's own key
    assert "StrictHostKeyChecking=yes" in Path(ops.rack.state_dir, "inventory.ini").read_text()
    wrong = ops.tmp / "wrong_known_hosts"  # every host's name and address, with another key
    wrong.write_text(re.sub(r"ssh-ed25519 \S+", "ssh-ed25519 " + OTHER_KEY, Path(ops.rack.known_hosts).read_text()))
    res = subprocess.run(["ssh", "-i", ops.rack.ssh_key, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
                          "-o", "UserKnownHostsFile=%s" % wrong, "-o", "GlobalKnownHostsFile=/dev/null",
                          "root@%s" % ops.rack.hosts[0].address, "true"], capture_output=True, text=True, check=False)
    assert res.returncode != 0 and "Host key verification failed" in res.stderr, res.stderr
    # between the KVM hosts (live migration's ssh): /etc/ssh/ssh_known_hosts from kvm_host. The key is
    # accepted (then no login: a has no key for b) ...
    probe = ("ssh -o BatchMode=yes -o ConnectTimeout=5 -o UserKnownHostsFile=/dev/null -o GlobalKnownHostsFile=%%s "
             "root@%s true 2>&1; echo rc=$?" % b.address)
    out = ops.sh(a.name, probe % "/etc/ssh/ssh_known_hosts")
    assert "Permission denied" in out and "Host key verification failed" not in out, out
    # ... a different key for b is refused
    ops.sh(a.name, "sed 's/ssh-ed25519 .*/ssh-ed25519 %s/' /etc/ssh/ssh_known_hosts > /tmp/wrong_known_hosts" % OTHER_KEY)
    out = ops.sh(a.name, probe % "/tmp/wrong_known_hosts")
    assert "Host key verification failed" in out, out


def _silenced_while_in_maintenance(ops: Ops, host: str) -> None:
    """The host left in maintenance keeps its silence: its OSD stopped now raises CephOsdDown in Alertmanager,
    suppressed by that silence, and nothing reaches the webhook."""
    active = ops.silences(host)
    assert len(active) == 1, ops.api(9093, "/api/v2/silences")
    osd = ops.osd_of(host)
    t0 = time.monotonic()
    ops.sh(host, "systemctl stop ceph-osd@%d" % osd)
    try:
        deadline = time.monotonic() + 240
        while not (alerts := [a for a in ops.api(9093, "/api/v2/alerts") if a["labels"].get("alertname") == "CephOsdDown"
                              and a["labels"].get("host") == host]):
            assert time.monotonic() < deadline, "CephOsdDown of %s never reached Alertmanager" % host
            time.sleep(2)
        FIGURES["alert_silenced_osd_down_s"] = round(time.monotonic() - t0, 1)
        assert alerts[0]["status"]["state"] == "suppressed", alerts
        assert alerts[0]["status"]["silencedBy"] == [active[0]["id"]], alerts
        time.sleep(12)  # group_wait 2 s + group_interval 5 s, twice: a notification would be here by now
        assert not ops.webhook.received(t0, host=host), ops.webhook.received(t0)
    finally:
        ops.sh(host, "systemctl start ceph-osd@%d" % osd)


def test_maintenance_cold_and_left_in_maintenance(ops):
    """migration=cold, return=false: the host stays out of service (mark + noout) until a run brings it back."""
    host = _busiest(ops)
    before = _steady(ops)
    leaving = sorted(vm for vm, h in before.items() if h == host)
    cold = {"host_maintenance_host": host, "host_maintenance_migration": "cold",
            "host_maintenance_return": False, "host_maintenance_shutdown_timeout": 5}
    job = run_job(ops, "maintenance.yml", cold, name="maintenance-cold")
    FIGURES["maintenance_cold_s"] = round(job.seconds)
    assert_ok(job)
    report = job.artifacts()["host_maintenance"]
    FIGURES["maintenance_cold_moves"] = report["moves"]
    assert sorted(m["vm"] for m in report["moves"]) == leaving and {m["how"] for m in report["moves"]} <= {"cold"}
    after = _steady(ops)
    assert host not in after.values()
    assert _noout(ops, host)
    assert json.loads(ops.sh(host, "cat " + MARK))["maintenance"] is True
    # the placement sees the host in maintenance (kvm_host reads the mark): the capacity report says so
    cap = run_job(ops, "capacity_report.yml", name="capacity-report-maintenance")
    assert_ok(cap)
    plan = json.loads((Path(cap.artifacts()["capacity_report"]["dir"]) / "plan.json").read_text())
    assert plan["hosts"][host]["maintenance"] is True
    _silenced_while_in_maintenance(ops, host)

    back = run_job(ops, "maintenance.yml", {"host_maintenance_host": host}, name="maintenance-return")
    assert_ok(back)
    assert not ops.silences(host) and ops.silences(host, "expired")
    assert back.changed() > 0 and back.artifacts()["host_maintenance"]["moves"] == []
    assert not _noout(ops, host) and ops.ceph("health")["status"] == "HEALTH_OK"
    assert ops.sh(host, "test -e %s && echo marked || echo clean" % MARK).strip() == "clean"
    assert _steady(ops) == after


def test_add_host(ops):
    t0 = time.monotonic()
    rackmod.add_host(NAME, osd_gib=4)
    ops.rack = rackmod.Rack.load(NAME)
    ops.hosts.append("hc-ops-4")
    FIGURES["add_host_boot_s"] = round(time.monotonic() - t0, 1)
    # with the HA VMs (test_ops_ha.py's cluster) and the new host in the cluster group (kvm_hosts): four nodes,
    # an even number of votes, refused before anything changes
    ops.with_ha = True
    even = run_job(ops, "add_host.yml", {"add_host_name": "hc-ops-4"}, name="add-host-even-cluster")
    assert_refused(even, "has 4 nodes, an even number of votes without a quorum device")
    # the first host of a pair (docs/ha.md): the cluster group, named in group_vars, does not list it yet
    # (test_ops_ha.py's test_add_host_pair_joins_the_cluster adds the second)
    ops.cluster_nodes = ops.hosts[:3]
    job = run_job(ops, "add_host.yml", {"add_host_name": "hc-ops-4"}, name="add-host")
    FIGURES["add_host_s"] = round(job.seconds)
    assert_ok(job)
    report = job.artifacts()["add_host"]
    assert "hc-ops-4" in report["placement_hosts"] and len(report["placement_hosts"]) == 4
    assert report["capacity"]["memory"]["capacity"] > 0 and not report["capacity"]["maintenance"]
    tree = ops.ceph("osd", "tree")
    bucket = next(n for n in tree["nodes"] if n["type"] == "host" and n["name"] == "hc-ops-4")
    osds = [n for n in tree["nodes"] if n["id"] in bucket["children"]]
    assert len(osds) == 1 and osds[0]["status"] == "up" and osds[0]["reweight"] > 0
    assert report["osds"] == [osds[0]["id"]]
    assert _healthy(ops)

    again = run_job(ops, "add_host.yml", {"add_host_name": "hc-ops-4"}, name="add-host-again")
    assert_ok(again)
    assert again.changed() == 0, again.changed_tasks()
    _steady(ops)
