"""High availability on the ops tier's rack (issue #16): after test_ops.py, the same three Debian 13 KVM hosts
get HA VMs, hence Pacemaker + Corosync (site.yml on the converged rack); HA VMs are restarted elsewhere after a
host's power loss, fenced first (Ceph blocklist, then the test bed's power switch), never twice; nothing is
restarted without quorum; bad input is refused with nothing changed.

Order matters (one rack): HA deploy -> refusals -> maintenance -> partition -> power loss x3 (each host comes
back) -> quorum loss -> site.yml after all changes nothing. Then conftest.py runs the add_host tests. Figures in
<ops tmp>/ha-figures.json and on stdout (HA FIGURES).
"""

from __future__ import annotations

import json
import re
import statistics
import threading
import time
from dataclasses import dataclass

import pytest

from lab import power
from lab import rack as rackmod
from lab.rack import ssh
from integration.ops.opsrack import VIRSH, Ops, assert_ok, install_fence_agent, run_job

pytestmark = [pytest.mark.image, pytest.mark.ceph, pytest.mark.slow, pytest.mark.timeout(3600)]

HOSTS = ("hc-ops-1", "hc-ops-2", "hc-ops-3")
HA_VMS = ("ha-a", "ha-b")
PLAIN = ("ops-a", "ops-b", "ops-c")  # test_ops.py's VMs: libvirt's own, autostarted
FAILOVER_GOAL_S = 60
RUNS = 3
FIGURES: dict = {"failover_s": []}
COUNT = re.compile(r"hc-count (\d+)")


@dataclass
class Ha(Ops):
    """The ops tier's rack with the HA VMs in its inventory, and helpers that survive a host being down."""
    with_ha: bool = True

    def up(self) -> list[str]:
        return [h.name for h in rackmod.Rack.load(self.rack.name).hosts if power.powered(h)]

    def sh_any(self, cmd: str, among: list[str] | None = None, timeout: float = 60) -> str:
        for name in among or self.up():
            try:
                res = ssh(self.rack, self.host(name), cmd, check=False, timeout=timeout)
            except Exception:  # pylint: disable=broad-except
                continue
            if res.returncode == 0:
                return res.stdout
        raise AssertionError("no host answered %r" % cmd)

    def ceph(self, *args: str):
        return json.loads(self.sh_any("ceph --connect-timeout 20 %s --format json" % " ".join(args)))

    def blocklisted(self) -> set[str]:
        """Addresses blocklisted as a whole (`osd blocklist ls` prints two JSON arrays: entries, then ranges)."""
        text = self.sh_any("ceph --connect-timeout 20 osd blocklist ls --format json 2>/dev/null")
        entries = json.JSONDecoder().raw_decode(text.strip())[0] if text.strip() else []
        return set(e["addr"].split(":0/0")[0] for e in entries if e["addr"].endswith(":0/0"))

    def running(self) -> dict[str, list[str]]:
        """VM -> hosts whose libvirt runs it (virsh list on every powered host)."""
        where: dict[str, list[str]] = {}
        for name in self.up():
            out = ssh(self.rack, self.host(name), VIRSH + "list --name", check=False, timeout=60).stdout
            for vm in out.split():
                where.setdefault(vm, []).append(name)
        return where

    def counter(self, host: str, vm: str) -> int | None:
        out = ssh(self.rack, self.host(host), "tail -c 300 /var/log/libvirt/qemu/%s.console.log 2>/dev/null" % vm,
                  check=False, timeout=20).stdout
        found = COUNT.findall(out)
        return int(found[-1]) if found else None

    def crm(self) -> str:
        return self.sh_any("crm_mon --one-shot --output-as=xml")

    def cib(self) -> str:
        return self.sh_any("cibadmin --query --scope configuration")

    def power_on(self, *names: str, timeout: float = 300, wait_ceph: bool = True) -> None:
        """Boot a host that lost its power, as an operator would: its raw OSD (a tmpfs directory that ceph-volume
        fills, empty after a boot: the ceph role does not activate raw OSDs at boot) activated again, then wait
        until every OSD is up and every placement group active, so the next failure finds Ceph whole."""
        for name in names:
            rackmod.boot_host(self.rack, self.host(name))
        for name in names:
            host = self.host(name)
            for loop in host.loops:
                ssh(self.rack, host, "ceph-volume raw activate --no-systemd --device %s >/dev/null 2>&1; for d in /var/lib/ceph/osd/"
                    "ceph-*; do systemctl reset-failed ceph-osd@${d##*-}; systemctl restart ceph-osd@${d##*-}; done"
                    % loop, check=False)
        if not wait_ceph:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                stat = json.loads(self.sh_any("ceph --connect-timeout 20 -s --format json"))
                osds = stat["osdmap"]
                pgs = stat["pgmap"].get("pgs_by_state", [])
                if osds["num_up_osds"] == osds["num_osds"] and all("active" in p["state_name"] for p in pgs):
                    return
            except (AssertionError, KeyError, ValueError):
                pass
            time.sleep(3)
        raise AssertionError("Ceph not whole %ds after %s came back" % (timeout, ", ".join(names)))

    def wait_cluster(self, online: int, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                xml = self.crm()
                if xml.count('online="true"') >= online and 'with_quorum="true"' in xml:
                    return
            except AssertionError:
                pass
            time.sleep(3)
        raise AssertionError("cluster not back with %d nodes online in %ds:\n%s" % (online, timeout, self.crm()))


@pytest.fixture(scope="module")
def ha(ops):
    # the same rack, job counter, webhook and power switch as test_ops.py; the inventory now with the HA VMs
    h = Ha(ops.rack, ops.tmp, hosts=ops.hosts, seq=ops.seq, webhook=ops.webhook, switch=ops.switch)
    yield h
    (ops.tmp / "ha-figures.json").write_text(json.dumps(FIGURES, indent=1, sort_keys=True))
    print("HA FIGURES %s" % json.dumps(FIGURES, sort_keys=True))


def _wait_running(ha: Ha, vms, timeout: float = 300) -> dict[str, list[str]]:
    deadline = time.monotonic() + timeout
    where: dict[str, list[str]] = {}
    while time.monotonic() < deadline:
        where = ha.running()
        if all(len(where.get(vm, [])) == 1 for vm in vms):
            return where
        time.sleep(2)
    raise AssertionError("VMs %s not running on exactly one host each: %s" % (list(vms), where))


def test_deploy_ha(ha):
    """HA VMs added to the converged rack of test_ops.py: site.yml sets up the cluster and hands them to it; the
    running plain VMs stay where they are."""
    plain_before = {vm: hosts for vm, hosts in _wait_running(ha, PLAIN).items() if vm in PLAIN}
    job = run_job(ha, "site.yml", name="deploy-ha")
    assert_ok(job)
    assert job.changed() > 0
    ha.wait_cluster(online=3)
    deadline = time.monotonic() + 240
    wanted = ("hc-fence-ceph", "hc-fence-power-hc-ops-1", "vm-ha-a", "vm-ha-b")
    while True:
        crm = ha.crm()
        missing = [r for r in wanted if not re.search(r'<resource id="%s"[^>]*role="Started"' % r, crm)]
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(5)
    assert not missing, "%s not started within 240 s:\n%s" % (missing, crm)
    where = _wait_running(ha, HA_VMS + PLAIN)
    assert where["ha-a"] != where["ha-b"], "anti-affinity broken: %s" % where
    assert {vm: where[vm] for vm in PLAIN} == plain_before, "plain VMs moved: %s, before %s" % (where, plain_before)
    # HA VMs are transient (the cluster's), the plain VM is libvirt's own, autostarted
    for vm in HA_VMS:
        persistent = ha.sh(where[vm][0], VIRSH + "dominfo %s | awk '/^Persistent:/ {print $2}'" % vm).strip()
        assert persistent == "no", "%s is persistent on %s" % (vm, where[vm][0])
    # the domain XML of each HA VM on every host
    for host in HOSTS:
        assert ha.sh(host, "ls /etc/hospital-cloud/vms").split() == ["ha-a.xml", "ha-b.xml"]
    # the storage fence's cephx user may do nothing but read the monitors and blocklist
    caps = ha.ceph("auth", "get", "client.hc-fence")[0]["caps"]
    assert caps == {"mon": 'allow r, allow command "osd blocklist", allow command "osd blocklist ls"'}, caps
    # corosync traffic is encrypted
    conf = ha.sh("hc-ops-1", "cat /etc/corosync/corosync.conf")
    assert "crypto_cipher: aes256" in conf and "crypto_hash: sha256" in conf
    again = run_job(ha, "site.yml", name="site-again")
    assert_ok(again)
    assert again.changed() == 0, "second site.yml changed: %s" % again.changed_tasks()
    FIGURES["deploy_s"] = round(job.seconds)


@pytest.mark.parametrize("extravars,texts", [
    # vm_guests' preflight (hospital.cloud.cluster_vm_problems) names every HA VM it refuses, and why
    ({"vm_guests_vms": [{"name": "ha-a", "vcpus": 1, "memory": 256, "disk": 4, "ha": True, "pin": "hc-ops-1"},
                        {"name": "ha-b", "vcpus": 1, "memory": 256, "disk": 4, "ha": True,
                         "extra": {"disks": [{"type": "file", "path": "/var/tmp/x.img", "target": "vdb"}]}}]},
     ["ha and pin exclude each other", "ha needs every disk on Ceph"]),
    # the cluster role's preflight (hospital.cloud.cluster_problems) names every problem of the cluster
    ({"cluster_power_fence": {"type": "bogus"}, "cluster_group": "even_pair"},
     ["unknown type 'bogus'", "even number of votes"]),
], ids=["vm-ha-pin-and-disk-not-on-ceph", "cluster-unknown-fence-and-even"])
def test_bad_input_changes_nothing(ha, extravars, texts):
    before = ha.cib()
    job = run_job(ha, "site.yml", extravars, name="refusal")
    assert job.rc != 0
    for text in texts:
        assert text in job.stdout, job.stdout[-3000:]
    assert job.changed() == 0, job.changed_tasks()
    assert ha.cib() == before


def test_maintenance_with_ha(ha):
    """The maintenance playbook puts the host in cluster standby: the cluster restarts its HA VM elsewhere, the
    plain VM moves live as before, nothing runs twice; the host leaves standby when it is back."""
    where = _wait_running(ha, HA_VMS + PLAIN)
    host = where["ha-a"][0]
    check = run_job(ha, "maintenance.yml", {"host_maintenance_host": host}, check=True, name="maintenance-check")
    assert_ok(check)
    assert "would put %s in cluster standby" % host in check.stdout
    assert _wait_running(ha, HA_VMS + PLAIN) == where, "check mode moved something"
    job = run_job(ha, "maintenance.yml", {"host_maintenance_host": host}, name="maintenance")
    assert_ok(job)
    FIGURES["maintenance_s"] = round(job.seconds)
    now = _wait_running(ha, HA_VMS + PLAIN)
    assert host not in now["ha-a"], "ha-a still on %s after maintenance: %s" % (host, now)
    assert now["ha-a"] != now["ha-b"], now
    standby = ha.sh(host, "crm_attribute --node %s --name standby --query --quiet --lifetime forever || true" % host)
    assert standby.strip() in ("", "off"), "still in standby: %r" % standby
    again = run_job(ha, "site.yml", name="site-after-maintenance")
    assert_ok(again)
    assert again.changed() == 0, again.changed_tasks()


class Watch(threading.Thread):
    """Every ~1 s: the counter of a VM on each surviving host, and the blocklist; first time seen for each."""

    def __init__(self, ha: Ha, vm: str, dead: str, survivors: list[str], start_value: int):
        super().__init__(daemon=True)
        self.ha, self.vm, self.dead, self.survivors = ha, vm, dead, survivors
        self.start_value = start_value
        self.t_blocklisted: float | None = None
        self.t_advanced: float | None = None
        self.where: str | None = None
        self.values: list[int] = []
        self.done = threading.Event()

    def run(self) -> None:
        address = self.ha.host(self.dead).address
        while not self.done.is_set():
            if self.t_blocklisted is None:
                try:
                    if address in self.ha.blocklisted():
                        self.t_blocklisted = time.monotonic()
                except Exception:  # pylint: disable=broad-except
                    pass
            for host in self.survivors:
                try:
                    value = self.ha.counter(host, self.vm)
                except Exception:  # pylint: disable=broad-except
                    continue
                if value is not None and value > self.start_value:
                    self.values.append(value)
                    if self.t_advanced is None:
                        self.t_advanced, self.where = time.monotonic(), host
            if self.t_advanced is not None and self.t_blocklisted is not None:
                return
            time.sleep(1)


COROSYNC_RULES = ["INPUT -p udp --dport 5405", "OUTPUT -p udp --dport 5405", "INPUT -p udp --sport 5405",
                  "OUTPUT -p udp --sport 5405"]
PROBE = "vms/hc-partition-probe"


def test_partition_fences_at_the_storage_layer(ha):
    """Cut only a host's cluster links while its qemu runs, its power fence not answering (a dead BMC): the
    majority fences it at the storage layer alone (level 2), its Ceph clients can no longer write, the VM
    runs on a survivor, and after the links come back the stale copy holds no watch on the disk."""
    where = _wait_running(ha, HA_VMS)
    vm = "ha-b"
    cut = where[vm][0]
    survivors = [h for h in HOSTS if h != cut]
    ha.sh_any("rbd rm %s >/dev/null 2>&1; rbd create --size 8 %s" % (PROBE, PROBE), among=survivors)
    ha.switch.refuse.add(cut)
    for host in survivors:
        ha.sh(host, "rm -f /var/log/libvirt/qemu/%s.console.log" % vm)
    last = ha.counter(cut, vm) or 0
    t_cut = time.monotonic()
    ha.sh(cut, "; ".join("iptables -I %s -j DROP" % r for r in COROSYNC_RULES))
    try:
        watch = Watch(ha, vm, cut, survivors, last)
        watch.start()
        watch.join(timeout=240)
        watch.done.set()
        assert watch.t_advanced is not None, "%s never ran on a survivor within 240 s" % vm
        assert watch.t_blocklisted is not None and watch.t_blocklisted <= watch.t_advanced + 1.0
        FIGURES["partition_failover_s"] = round(watch.t_advanced - t_cut, 1)
        # the cut host is alive (only its cluster links are down) and still runs its copy, but can no longer write
        assert power.powered(ha.host(cut))
        write = ssh(ha.rack, ha.host(cut), "timeout 60 rbd bench --io-type write --io-size 4096 --io-total 4096 %s"
                    % PROBE, check=False, timeout=90)
        assert write.returncode != 0, "a fenced host could still write to Ceph: %s" % write.stdout
        FIGURES["partition_write_refused"] = (write.stderr or write.stdout).strip()[-200:]
    finally:
        ha.sh(cut, "; ".join("iptables -D %s -j DROP" % r for r in COROSYNC_RULES), check=False)
        ha.switch.refuse.discard(cut)
    time.sleep(30)
    # links back: one copy holds the disk (the stale one's watch went with the blocklist)
    status = json.loads(ha.sh_any("rbd status --format json vms/%s-root" % vm, among=survivors))
    watchers = [w["address"].split(":")[0] for w in status.get("watchers", [])]
    assert watchers == [ha.host(watch.where).address], "watchers of %s: %s" % (vm, status)
    assert ha.host(cut).address in ha.blocklisted(), "unfenced before the host was made clean"
    # the operator's part (docs/ha.md): make the host clean (its stale qemu gone), start its cluster stack
    ha.sh(cut, VIRSH + "destroy %s || true; systemctl restart corosync pacemaker" % vm)
    ha.wait_cluster(online=3)
    deadline = time.monotonic() + 120
    while ha.host(cut).address in ha.blocklisted() and time.monotonic() < deadline:
        time.sleep(3)
    assert ha.host(cut).address not in ha.blocklisted(), "not unfenced after rejoining clean"
    assert _wait_running(ha, HA_VMS)[vm] == [watch.where]
    ha.sh_any("rbd rm %s" % PROBE, among=survivors)


@pytest.mark.parametrize("run", range(1, RUNS + 1))
def test_power_loss_fails_over(ha, run):
    vm = HA_VMS[(run - 1) % 2]
    where = _wait_running(ha, HA_VMS)
    dead = where[vm][0]
    survivors = [h for h in ha.up() if h != dead]
    # a console log a survivor kept from an earlier run of the VM there is not this failover's
    for host in survivors:
        ha.sh(host, "rm -f /var/log/libvirt/qemu/%s.console.log" % vm)
    # the last value its disk holds: the counter goes on from there on the survivor
    last = ha.counter(dead, vm) or 0
    watch = Watch(ha, vm, dead, survivors, last)
    t_kill, wall_kill = time.monotonic(), time.time()
    power.power_loss(ha.rack, ha.host(dead))
    watch.start()
    watch.join(timeout=240)
    watch.done.set()
    assert watch.t_advanced is not None, "%s never ran again on %s within 240 s" % (vm, survivors)
    assert watch.t_blocklisted is not None, "%s (%s) never blocklisted" % (dead, ha.host(dead).address)
    failover = watch.t_advanced - t_kill
    FIGURES["failover_s"].append(round(failover, 1))
    FIGURES.setdefault("runs", []).append({"vm": vm, "dead": dead, "to": watch.where, "failover_s": round(failover, 1),
                                           "blocklisted_after_s": round(watch.t_blocklisted - t_kill, 1)})
    # fenced before it ran elsewhere (the watch saw the entry no later than the counter moving)
    assert watch.t_blocklisted <= watch.t_advanced + 1.0
    # exactly one copy, on a survivor; the other HA VM untouched
    now = _wait_running(ha, HA_VMS)
    assert now[vm] == [watch.where] and dead not in now[vm]
    assert now[vm] != now[HA_VMS[run % 2]], "anti-affinity broken after failover: %s" % now
    assert watch.values == sorted(watch.values) and min(watch.values) > last, "counter went backwards: %s after %d" % (
        watch.values, last)
    # the power fence was asked about the dead host (already off: fencing.py does not power it off again)
    assert any(e["host"] == dead and e["action"] in ("status", "off") and e["time"] >= wall_kill
               for e in ha.switch.events), ha.switch.events[-5:]
    # the host comes back: it rejoins, is unfenced, and the VM stays where it runs now
    ha.power_on(dead)
    ha.wait_cluster(online=3)
    deadline = time.monotonic() + 120
    while ha.host(dead).address in ha.blocklisted() and time.monotonic() < deadline:
        time.sleep(3)
    assert ha.host(dead).address not in ha.blocklisted(), "not unfenced after rejoining"
    time.sleep(10)
    assert _wait_running(ha, HA_VMS)[vm] == [watch.where], "the VM bounced back"
    assert failover <= 2 * FAILOVER_GOAL_S, "failover took %.1f s" % failover


def test_failover_figures(ha):  # pylint: disable=unused-argument
    runs = FIGURES["failover_s"]
    assert len(runs) == RUNS, runs
    FIGURES["failover_median_s"] = statistics.median(runs)
    FIGURES["failover_max_s"] = max(runs)
    assert statistics.median(runs) <= FAILOVER_GOAL_S, runs


def test_quorum_loss_restarts_nothing(ha):
    where = _wait_running(ha, HA_VMS)
    keep = where["ha-a"][0]
    killed = [h for h in HOSTS if h != keep]
    # both at once: killed one after the other, the first loss leaves a quorate pair that starts recovering (and
    # can displace the kept host's VM for anti-affinity) before the second loss removes quorum
    pid = ha.sh(keep, "cat /run/libvirt/qemu/ha-a.pid").strip()
    wall_kill = time.time()
    power.power_loss_together(ha.rack, [ha.host(name) for name in killed])
    time.sleep(60)
    # qemu processes, not virsh: with Ceph's quorum gone too, a guest blocked on its disk can stall libvirt's answer
    procs = ssh(ha.rack, ha.host(keep), "ps -eo pid=,args= | sed -n 's/^ *\\([0-9]*\\) .*guest=\\([a-z-]*\\).*/\\1 \\2/p'",
                check=False, timeout=60).stdout.split("\n")
    running = dict(reversed(line.split()) for line in procs if len(line.split()) == 2)
    assert "ha-b" not in running, "ha-b started without quorum: %s" % running
    # nothing restarted: the kept VM runs in the same qemu or, if the cluster stopped it (freeze keeps what runs,
    # but a failed monitor's stop is still carried out: seen once, its disk blocked with Ceph's quorum gone), not
    # at all
    assert running.get("ha-a", pid) == pid, "ha-a restarted without quorum: %s, was PID %s" % (running, pid)
    FIGURES["quorum_loss_kept_vm_ran_on"] = "ha-a" in running
    if "ha-a" not in running:
        FIGURES["quorum_loss_kept_vm_log"] = ha.sh(keep, "journalctl -u pacemaker --since @%d --no-pager | grep -i -E "
                                                         "'vm-ha-a|quorum' | tail -15" % wall_kill, check=False)
    xml = ssh(ha.rack, ha.host(keep), "crm_mon --one-shot --output-as=xml", check=False).stdout
    assert 'with_quorum="false"' in xml
    assert not any(e["host"] in killed and e["time"] >= wall_kill and e["action"] == "off"
                   for e in ha.switch.events), "fenced without quorum"
    # one host back: quorum again; the cluster fences the host still dead (never fenced while there was no
    # quorum) before it recovers anything; then the last host comes back and is unfenced when it rejoins
    first, last = killed
    ha.power_on(first, wait_ceph=False)
    deadline = time.monotonic() + 240
    while ha.host(last).address not in ha.blocklisted() and time.monotonic() < deadline:
        time.sleep(3)
    assert ha.host(last).address in ha.blocklisted(), "the host still dead was not fenced once quorum was back"
    ha.power_on(last)
    ha.wait_cluster(online=3)
    _wait_running(ha, HA_VMS)


def test_site_after_failovers_changes_nothing(ha):
    """The plain VMs of a host that lost its power stay down when it boots (their autostart runs while the host is
    still fenced): the next site.yml starts them; a second run changes nothing."""
    _wait_running(ha, HA_VMS)
    deadline = time.monotonic() + 180
    while set(ha.addresses()) & ha.blocklisted() and time.monotonic() < deadline:
        time.sleep(3)
    assert not set(ha.addresses()) & ha.blocklisted(), "hosts still fenced: %s" % ha.blocklisted()
    job = run_job(ha, "site.yml", name="site-after")
    assert_ok(job)
    _wait_running(ha, HA_VMS + PLAIN)
    again = run_job(ha, "site.yml", name="site-after-again")
    assert_ok(again)
    assert again.changed() == 0, "site.yml changed after the failovers: %s" % again.changed_tasks()


def test_add_host_pair_joins_the_cluster(ha):
    """The second host of a pair (test_ops.py's test_add_host added hc-ops-4 outside the cluster group): with both
    in the group (cluster_group in group_vars), add_host.yml joins them to the running cluster without restarting
    Corosync on the old nodes; the next site.yml gives them the HA VMs' definitions."""
    assert ha.hosts == list(HOSTS) + ["hc-ops-4"], ha.hosts
    t0 = time.monotonic()
    rackmod.add_host(ha.rack.name, osd_gib=4)
    ha.rack = rackmod.Rack.load(ha.rack.name)
    ha.hosts.append("hc-ops-5")
    FIGURES["add_host_boot_s"] = round(time.monotonic() - t0, 1)
    for name in ("hc-ops-4", "hc-ops-5"):
        install_fence_agent(ha.rack, ha.host(name))
    ha.cluster_nodes = list(ha.hosts)
    corosync = "systemctl show --property MainPID --value corosync"
    pids = {h: ha.sh(h, corosync).strip() for h in HOSTS}
    job = run_job(ha, "add_host.yml", {"add_host_name": "hc-ops-5"}, name="add-host-pair")
    assert_ok(job)
    FIGURES["add_host_pair_s"] = round(job.seconds)
    ha.wait_cluster(online=5)
    assert {h: ha.sh(h, corosync).strip() for h in HOSTS} == pids, "Corosync restarted on an old node"
    members = re.findall(r'<node name="([^"]+)"[^>]*online="true"', ha.crm())
    assert sorted(members) == sorted(ha.hosts), members
    site = run_job(ha, "site.yml", name="site-pair")
    assert_ok(site)
    for host in ("hc-ops-4", "hc-ops-5"):
        assert ha.sh(host, "ls /etc/hospital-cloud/vms").split() == ["ha-a.xml", "ha-b.xml"]
    where = _wait_running(ha, HA_VMS + PLAIN)
    assert where["ha-a"] != where["ha-b"], "anti-affinity broken: %s" % where
    # (a second site.yml here, changed=0 in the clean-clone CI run of 3d4e49b, was left out for CI's time budget:
    # the ops tier took 64 min there; site.yml's idempotence is asserted after the HA deploy and the failovers)
