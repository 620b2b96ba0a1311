"""A rolling release upgrade, Debian 12 (bookworm, Ceph 16) -> Debian 13 (trixie, Ceph 18), of a 3-host rack.

`make test-upgrade` (issue #19; outside CI: slow). One rack for the module (tests/upgrade/conftest.py):
deploy site.yml on bookworm -> playbooks/upgrade.yml in check mode and with a bad target (nothing changes)
-> the real rolling upgrade, killed while the first host is inside its package upgrade and run again, while a
sampler records every ~1 s where each VM runs and imaging jobs are submitted -> site.yml on the upgraded
rack changes nothing. Playbooks run through ansible-runner like AWX (the ops tier's run_job), except the
interrupted upgrade: a subprocess of the venv's ansible-playbook whose process group the test kills by PID.

HC_KEEP_RACK=1 leaves the rack up afterwards; a later run (e.g. ``-k upgrade``) continues on it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lab.playbook import Progress
from lab.rack import RackError, ssh
from testbed.ansible_run import REPO, VENV_PY, ansible_env
# the ops tier's AWX-like job runner and rack helpers (tests/ is on sys.path: tests/conftest.py)
from integration.ops.opsrack import Ops, assert_ok, run_job

pytestmark = [pytest.mark.image, pytest.mark.ceph, pytest.mark.slow, pytest.mark.timeout(3600)]

HOSTS = ("hc-upg-1", "hc-upg-2", "hc-upg-3")
VMS = ("upg-a", "upg-b", "upg-c")
INVENTORY = Path(__file__).resolve().parent / "inventory"
UPGRADE = REPO / "playbooks" / "upgrade.yml"
TARGET = "trixie"
# agreed with the playbook's author: the task that upgrades a host's packages is named
# "Release upgrade | full-upgrade to the target release"
FULL_UPGRADE_TASK = "Release upgrade | full-upgrade"
KILL_AFTER_S = 20  # seconds inside the first host's full-upgrade before the run is killed
MAX_PAUSE_S = 60  # longest time a VM may be seen running nowhere
MAX_DOUBLE_SAMPLES = 2  # consecutive samples a VM may be seen running on two hosts
IMAGES = 40
WORKER = "/opt/hospital-imaging/venv/bin/"
WORKER_CONF = " --config /etc/hospital-imaging/worker.yml"
IMAGE_DIR = "/var/tmp/hc-upg-images"
FIGURES: dict = {}
PLAN: dict = {}  # the host order check mode announced
STARTED = re.compile(r"\[started TASK: (.*) on (\S+)\]\s*$")


@dataclass
class Upg(Ops):
    """The ops tier's helpers (sh, ceph, domains, host) on the upgrade rack with its static inventory."""
    hosts: list[str] = field(default_factory=lambda: list(HOSTS))

    def inventory(self) -> list[str]:
        return [str(INVENTORY), str(Path(self.rack.state_dir) / "inventory.ini")]

    def ceph(self, *args: str):
        return json.loads(self.sh(HOSTS[0], "ceph --connect-timeout 20 %s --format json" % " ".join(args)))


@pytest.fixture(scope="module")
def upg(upg_rack):
    # logs and job artefacts where they outlive pytest's rotation of its temporary directories (.cache: ignored)
    tmp = REPO / ".cache" / "test-upgrade" / time.strftime("%Y%m%d-%H%M%S")
    tmp.mkdir(parents=True)
    u = Upg(upg_rack, tmp)
    print("upgrade tier: job artefacts and logs in %s" % u.tmp)
    yield u
    print("FIGURES %s" % json.dumps(FIGURES, sort_keys=True))


# --- what the hosts run -------------------------------------------------------------------------------------

def _os_versions(u: Upg) -> dict[str, str]:
    return {h: u.sh(h, "sed -n 's/^VERSION_ID=//p' /etc/os-release").strip().strip('"') for h in u.hosts}


def _packages(u: Upg) -> dict[str, str]:
    """A checksum of each host's installed packages (name, version, status)."""
    return {h: u.sh(h, "dpkg-query -W -f '${Package} ${Version} ${db:Status-Abbrev}\\n' | sha256sum").split()[0]
            for h in u.hosts}


def _ceph_versions(u: Upg) -> dict[str, set[str]]:
    """`ceph versions`: daemon type -> the set of versions running (e.g. {'mon': {'16.2.15'}})."""
    out = {}
    for daemon, counts in u.ceph("versions").items():
        if daemon != "overall":
            out[daemon] = {re.match(r"ceph version (\S+)", k).group(1) for k in counts}
    return out


def _healthy(u: Upg, timeout: float = 180) -> bool:
    deadline = time.monotonic() + timeout
    while u.ceph("health")["status"] != "HEALTH_OK":
        if time.monotonic() > deadline:
            return False
        time.sleep(5)
    return True


def _steady(u: Upg) -> dict:
    """Where the VMs run now; asserts every declared VM runs exactly once and is defined once."""
    doms = u.domains()
    for vm in VMS:
        assert vm in doms, (vm, doms)
        assert len(doms[vm]["running"]) == 1 and doms[vm]["defined"] == doms[vm]["running"], (vm, doms)
    return {vm: doms[vm]["running"][0] for vm in VMS}


def _failure_messages(job) -> list[str]:
    return [str(e["event_data"].get("res", {}).get("msg", "")) for e in job.events
            if e.get("event") in ("runner_on_failed", "runner_on_unreachable", "runner_item_on_failed")]


PLAN_TASK = "Plan | the plan"


def _plan_order(job) -> list[str]:
    """The hosts in the order the plan's message lists them ([] if no plan message names all of them). Only the
    plan task: another message naming every host (the placement report) can come first in job.events."""
    for e in job.events:
        if e.get("event") != "runner_on_ok" or not e["event_data"].get("task", "").endswith(PLAN_TASK):
            continue
        msg = e["event_data"].get("res", {}).get("msg")
        text = msg if isinstance(msg, str) else json.dumps(msg)
        pos = {h: text.find(h) for h in HOSTS}
        if msg is not None and min(pos.values()) >= 0:
            return sorted(HOSTS, key=pos.get)
    return []


def _need_playbook() -> None:
    assert UPGRADE.is_file(), "%s is not in the checkout yet (issue #19)" % UPGRADE.relative_to(REPO)


# --- the sampler: where every VM runs, every ~1 s -----------------------------------------------------------

# one ssh round trip per host: libvirt's view (Id Name State table), then the qemu processes (used for that
# host only when virsh failed there, e.g. while libvirtd restarts)
PROBE = ("virsh -c qemu:///system list 2>/dev/null && echo @virsh-ok; echo @qemu; "
         "ps -eo comm=,args= | sed -n 's/^qemu-system[^ ]* .*-name guest=\\([^, ]*\\).*/\\1/p'; echo @counters; "
         # the last counter each VM's init loop printed to its serial console on this host (vm_guests.yml); the
         # last line is left out: the guest may be writing it ("hc-count 1" of "hc-count 12")
         "for f in /var/log/libvirt/qemu/upg-*.console.log; do [ -f \"$f\" ] || continue; n=${f##*/}; "
         "echo \"${n%.console.log} $(tail -c 400 \"$f\" | sed '$d' | grep -ao 'hc-count [0-9]*' | tail -n 1 "
         "| cut -d' ' -f2)\"; "
         "done")


def parse_probe(out: str) -> dict:
    """{'ok': virsh answered, 'running': [...], 'active': [...] (running, paused, ...), 'qemu': [...],
    'counters': {vm: the last counter its console shows on this host}}."""
    virsh, dummy, rest = out.partition("@qemu")
    qemu, dummy, counters = rest.partition("@counters")
    res: dict = {"ok": "@virsh-ok" in virsh, "running": [], "active": [], "qemu": qemu.split(), "counters": {}}
    for line in counters.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            res["counters"][parts[0]] = int(parts[1])
    for line in virsh.splitlines():
        parts = line.split()
        if len(parts) >= 3 and (parts[0].isdigit() or parts[0] == "-"):
            res["active"].append(parts[1])
            if parts[2] == "running":
                res["running"].append(parts[1])
    return res


class Sampler(threading.Thread):
    """Every `interval` s, in parallel over the hosts: one ssh (multiplexed over a master connection)."""

    def __init__(self, u: Upg, interval: float = 1.0):
        super().__init__(daemon=True, name="vm-sampler")
        self.u = u
        self.interval = interval
        self.samples: list[dict] = []
        self.halt = threading.Event()
        self.t0 = time.monotonic()
        self._cm = tempfile.mkdtemp(prefix="hc-upg-cm-")  # short: a unix socket path has ~100 chars

    def _query(self, host: str) -> dict:
        h = self.u.host(host)
        cmd = ["ssh", "-i", self.u.rack.ssh_key, *self.u.rack.ssh_options(), "-o", "LogLevel=ERROR",
               "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "-o", "ControlMaster=auto",
               "-o", "ControlPath=%s/%%C" % self._cm, "-o", "ControlPersist=300", "-o", "ServerAliveInterval=5",
               "root@" + h.address, PROBE]
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=20, check=False)
        except subprocess.TimeoutExpired:
            return {"ok": False, "running": [], "active": [], "qemu": [], "error": "timeout"}
        if res.returncode != 0 and "@qemu" not in res.stdout:
            return {"ok": False, "running": [], "active": [], "qemu": [], "error": res.stderr.strip()[-200:]}
        return parse_probe(res.stdout)

    def run(self) -> None:
        with ThreadPoolExecutor(len(self.u.hosts)) as pool:
            while not self.halt.is_set():
                t = time.monotonic()
                hosts = list(self.u.hosts)
                try:
                    got = dict(zip(hosts, pool.map(self._query, hosts)))
                except Exception as exc:  # pylint: disable=broad-exception-caught  # a sample, never the thread's end
                    got = {h: {"ok": False, "running": [], "active": [], "qemu": [], "error": repr(exc)} for h in hosts}
                self.samples.append({"t": round(t - self.t0, 2), "hosts": got})
                self.halt.wait(max(0.0, self.interval - (time.monotonic() - t)))

    def stop(self) -> None:
        self.halt.set()
        self.join(60)
        # the master connections end themselves (ControlPersist) once idle; ask them now
        for h in self.u.hosts:
            subprocess.run(["ssh", "-o", "ControlPath=%s/%%C" % self._cm, "-O", "exit", "root@" + self.u.host(h).address],
                           capture_output=True, timeout=10, check=False)


def analyse(samples: list[dict], vms: tuple[str, ...] | list[str]) -> dict:
    """Per VM: the longest time it was seen running nowhere (from the last sample that saw it running to the next
    one; an upper bound), the most consecutive samples it ran on two hosts (and was active, i.e. running or
    paused, on two: a live migration), its moves, and the samples that had to use the qemu processes."""
    out: dict = {}
    for vm in vms:
        fig = {"longest_pause_s": 0.0, "pause_at_s": None, "double_running": 0, "double_active": 0, "moves": [],
               "qemu_fallback": 0, "unknown_host_samples": 0, "counter_first": None, "counter_last": None,
               "longest_counter_stall_s": 0.0, "counter_stall_at_s": None, "counter_backwards": 0}
        last_seen, missed, run2, act2, where = samples[0]["t"] if samples else 0.0, False, 0, 0, None
        advanced_at = None  # the first sample that showed the counter's current value
        for s in samples:
            # the counter: on the host(s) where the VM runs (a host it left keeps its console file, stale)
            seen = [r["counters"][vm] for r in s["hosts"].values()
                    if r.get("ok") and vm in r.get("running", []) and vm in r.get("counters", {})]
            if seen:
                value = max(seen)
                if fig["counter_last"] is None or value > fig["counter_last"]:
                    if fig["counter_first"] is None:
                        fig["counter_first"] = value
                    fig["counter_last"], advanced_at = value, s["t"]
                elif value < fig["counter_last"]:
                    fig["counter_backwards"] += 1
                # a stall is the time samples kept showing the same value (a lower bound, short by at most one
                # sampling interval); a gap between samples (a probe that timed out) shows nothing either way
                elif s["t"] - advanced_at > fig["longest_counter_stall_s"]:
                    fig["longest_counter_stall_s"] = round(s["t"] - advanced_at, 1)
                    fig["counter_stall_at_s"] = advanced_at
            running, active = [], []
            for h, r in sorted(s["hosts"].items()):
                if r.get("ok"):
                    running += [h] if vm in r["running"] else []
                    active += [h] if vm in r["active"] else []
                elif vm in r.get("qemu", []):  # virsh did not answer there: its qemu process tells
                    running.append(h)
                    active.append(h)
                    fig["qemu_fallback"] += 1
                elif r.get("error"):
                    fig["unknown_host_samples"] += 1
            run2 = run2 + 1 if len(running) > 1 else 0
            act2 = act2 + 1 if len(active) > 1 else 0
            fig["double_running"] = max(fig["double_running"], run2)
            fig["double_active"] = max(fig["double_active"], act2)
            if running:
                if missed and s["t"] - last_seen > fig["longest_pause_s"]:
                    fig["longest_pause_s"], fig["pause_at_s"] = round(s["t"] - last_seen, 1), last_seen
                last_seen, missed = s["t"], False
                if len(running) == 1 and running[0] != where:
                    if where is not None:
                        fig["moves"].append({"t": s["t"], "from": where, "to": running[0]})
                    where = running[0]
            else:
                missed = True
        if missed and samples:  # not running at the end
            fig["longest_pause_s"] = max(fig["longest_pause_s"], round(samples[-1]["t"] - last_seen, 1))
            fig["pause_at_s"] = last_seen
            fig["running_at_end"] = False
        else:
            fig["running_at_end"] = bool(samples)
        out[vm] = fig
    return out


# --- imaging jobs submitted while the rack is upgraded ------------------------------------------------------

class Images(threading.Thread):
    """IMAGES synthetic PNGs (the same files on every host), submitted through the worker CLI: `first` at once,
    then `batch` every `every` s until stopped; each batch from the first host whose CLI answers (the host being
    upgraded last)."""

    def __init__(self, u: Upg, busy, count: int = IMAGES, first: int = 8, batch: int = 4, every: float = 90):
        super().__init__(daemon=True, name="image-submitter")
        self.u, self.busy, self.count, self.first, self.batch, self.every = u, busy, count, first, batch, every
        self.files = ["upg-%02d.png" % i for i in range(count)]
        self.jobs: dict[str, str] = {}  # file -> job id
        self.attempts: list[dict] = []
        self.halt = threading.Event()
        self.lock = threading.Lock()
        self.base: dict = {}

    def prepare(self) -> None:
        gen = ("from hospital_imaging.synthetic import phantom, png_bytes\n"
               "import pathlib\n"
               "for i in range(%d):\n"
               "    pathlib.Path('%s/upg-%%02d.png' %% i).write_bytes(png_bytes(phantom(512, seed=1000 + i)))\n"
               % (self.count, IMAGE_DIR))
        for h in self.u.hosts:
            self.u.sh(h, "rm -rf %s && mkdir -p %s && %spython -c \"%s\"" % (IMAGE_DIR, IMAGE_DIR, WORKER, gen))
        self.base = self.status()

    def status(self) -> dict:
        """The queue's counts (inbox, done, failed, outputs) from the first host whose CLI answers."""
        errors = []
        for h in self.u.hosts:
            try:
                res = ssh(self.u.rack, self.u.host(h), WORKER + "hospital-imaging status" + WORKER_CONF, check=False,
                          timeout=120)
            except subprocess.TimeoutExpired:
                res = subprocess.CompletedProcess([], 124, "", "timeout after 120 s")
            if res.returncode == 0:
                return {k: int(v) for k, v in json.loads(res.stdout).items()}
            errors.append("%s: rc=%d %s" % (h, res.returncode, res.stderr.strip()[-300:]))
        raise AssertionError("hospital-imaging status failed on every host: %s" % errors)

    def submit(self, n: int) -> int:
        """Submit the next n files not yet queued; returns how many were queued."""
        with self.lock:
            todo = [f for f in self.files if f not in self.jobs][:n]
            if not todo:
                return 0
            busy = self.busy()
            for h in sorted(self.u.hosts, key=lambda x: x == busy):
                try:
                    res = ssh(self.u.rack, self.u.host(h), "cd %s && %shospital-imaging submit%s %s"
                              % (IMAGE_DIR, WORKER, WORKER_CONF, " ".join(todo)), check=False, timeout=120)
                except subprocess.TimeoutExpired:
                    res = subprocess.CompletedProcess([], 124, "", "timeout after 120 s")
                got = 0
                for line in res.stdout.splitlines():
                    try:
                        rec = json.loads(line)
                    except ValueError:
                        continue
                    self.jobs[Path(rec["file"]).name] = rec["job"]
                    got += 1
                self.attempts.append({"t": round(time.monotonic(), 1), "host": h, "asked": len(todo), "queued": got,
                                      "rc": res.returncode, "err": res.stderr.strip()[-200:]})
                todo = [f for f in todo if f not in self.jobs]
                if not todo:
                    break
            return n - len(todo)

    def run(self) -> None:
        while not self.halt.wait(self.every) and len(self.jobs) < self.count:
            self.submit(self.batch)

    def stop(self) -> None:
        self.halt.set()
        self.join(300)
        self.submit(self.count)  # whatever is left, now

    def drain(self, timeout: float = 600) -> dict:
        """Wait until every queued job is done or failed; the counts since prepare()."""
        deadline = time.monotonic() + timeout
        while True:
            st = self.status()
            got = {k: st.get(k, 0) - self.base.get(k, 0) for k in ("done", "failed", "outputs")}
            got.update(submitted=len(self.jobs), inbox=st.get("inbox", 0))
            if got["done"] + got["failed"] >= len(self.jobs) or time.monotonic() > deadline:
                got["drain_s"] = round(timeout - (deadline - time.monotonic()), 1)
                return got
            time.sleep(5)


# --- an ansible-playbook subprocess the test can kill --------------------------------------------------------

class PlaybookProcess:
    """The venv's ansible-playbook in its own process group (killed by its PID), its output kept in `log`, a short
    live account on stdout, and every task start per host (ANSIBLE_SHOW_PER_HOST_START)."""

    def __init__(self, args: list[str], log: Path):
        self.log = log
        self.lines: list[str] = []
        self.started: list[tuple[float, str, str]] = []  # (monotonic, task, host)
        env = ansible_env({"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.default", "PYTHONUNBUFFERED": "1",
                           "ANSIBLE_SHOW_PER_HOST_START": "1", "ANSIBLE_FORKS": "10"})
        self.cmd = [str(VENV_PY.parent / "ansible-playbook"), *args]
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(  # pylint: disable=consider-using-with
            self.cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            text=True, bufsize=1, errors="replace", start_new_session=True)
        print("%s: pid %d, log %s" % (" ".join(self.cmd), self.proc.pid, log), flush=True)
        self.reader = threading.Thread(target=self._read, daemon=True, name="playbook-reader")
        self.reader.start()

    def _read(self) -> None:
        progress = Progress(sys.stdout)
        with open(self.log, "w", encoding="utf-8") as fh:
            for line in self.proc.stdout or ():
                fh.write(line)
                fh.flush()
                self.lines.append(line)
                m = STARTED.search(line)
                if m:
                    self.started.append((time.monotonic(), m.group(1), m.group(2)))
                progress.feed(line)
        progress.close()

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def current_host(self) -> str | None:
        return self.started[-1][2] if self.started else None

    def wait_for_task(self, substring: str, timeout: float) -> tuple[float, str] | None:
        """(time, host) of the first start of a task whose name contains `substring`; None if the run ended first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for t, task, host in list(self.started):
                if substring in task:
                    return t, host
            if self.proc.poll() is not None and not self.reader.is_alive():
                return None
            time.sleep(0.5)
        raise AssertionError("no task %r started within %d s" % (substring, timeout))

    def kill(self, grace: float = 20) -> None:
        """SIGTERM to the run's process group, SIGKILL to what is left after `grace` s (by its PID only)."""
        pgid = self.proc.pid  # start_new_session: the group is ours (its leader is not reaped before this)
        if self.proc.poll() is None:
            os.killpg(pgid, signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(pgid, signal.SIGKILL)  # the forks of the run that outlived its leader
        except ProcessLookupError:
            pass
        self.proc.wait(30)
        self.reader.join(60)

    def wait(self, timeout: float) -> int:
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("%s still running after %d s: killed" % (" ".join(self.cmd), timeout)) from None
        self.reader.join(60)
        return rc

    def order(self, substring: str) -> list[str]:
        """Hosts in the order they first started a task whose name contains `substring`."""
        seen: list[str] = []
        for dummy, task, host in self.started:
            if substring in task and host not in seen:
                seen.append(host)
        return seen


def _upgrade_cmd(u: Upg) -> list[str]:
    inv = u.inventory()
    return ["-i", inv[0], "-i", inv[1], str(UPGRADE), "-e", "release_upgrade_target=%s" % TARGET,
            "-e", "release_upgrade_reboot=false"]  # the hosts share this machine's kernel: no reboot here


# --- the tests ------------------------------------------------------------------------------------------------

def test_deploy_bookworm(upg):
    assert set(_os_versions(upg).values()) == {"12"}, _os_versions(upg)
    job = run_job(upg, "site.yml", name="deploy-site")
    FIGURES["deploy_s"] = round(job.seconds)
    assert_ok(job)
    assert set(upg.hosts) <= set(job.stats["ok"]), job.stats
    assert set(_os_versions(upg).values()) == {"12"}, _os_versions(upg)
    versions = _ceph_versions(upg)
    FIGURES["ceph_before"] = {k: sorted(v) for k, v in versions.items()}
    assert {"mon", "mgr", "osd"} <= set(versions), versions
    assert all(v.startswith("16.2.") for vs in versions.values() for v in vs), versions
    assert _healthy(upg), upg.ceph("health")
    where = _steady(upg)
    assert where["upg-a"] != where["upg-b"]  # anti-affinity
    print("bookworm deploy: %d s, changed=%d, VMs %s, Ceph %s" % (job.seconds, job.changed(), where, versions))


def test_upgrade_check_mode_reports_plan(upg):
    _need_playbook()
    before = _packages(upg)
    job = run_job(upg, "upgrade.yml", {"release_upgrade_target": TARGET}, check=True, name="upgrade-check")
    assert_ok(job)
    assert _packages(upg) == before, "check mode changed the installed packages"
    assert set(_os_versions(upg).values()) == {"12"}, _os_versions(upg)
    assert all(v.startswith("16.2.") for vs in _ceph_versions(upg).values() for v in vs)
    order = _plan_order(job)
    assert sorted(order) == sorted(HOSTS), "check mode printed no message naming every host in order: %s" % \
        job.stdout[-3000:]
    PLAN["order"] = order
    FIGURES["plan_order"] = order
    print("check mode: the plan upgrades %s in this order" % ", ".join(order))


def test_upgrade_bad_input(upg):
    _need_playbook()
    before = _packages(upg)
    job = run_job(upg, "upgrade.yml", {"release_upgrade_target": "forky"}, name="upgrade-bad-target")
    assert job.rc != 0 and job.status == "failed", job.stdout[-3000:]
    msgs = _failure_messages(job)
    assert any(TARGET in m for m in msgs), "no failure message names the supported target %s: %s" % (TARGET, msgs)
    assert job.changed() == 0, job.changed_tasks()
    assert _packages(upg) == before and set(_os_versions(upg).values()) == {"12"}
    print("bad target refused: %s" % next(m for m in msgs if TARGET in m))


@pytest.mark.timeout(4 * 3600)
def test_rolling_upgrade_interrupted_then_resumed(upg):  # pylint: disable=too-many-locals,too-many-statements
    _need_playbook()
    FIGURES["where_before"] = _steady(upg)
    assert _healthy(upg), upg.ceph("health")
    sampler = Sampler(upg)
    runs: list[PlaybookProcess] = []
    images = Images(upg, busy=lambda: runs[-1].current_host() if runs else None)
    images.prepare()
    sampler.start()
    try:
        time.sleep(5)  # a few samples of the steady rack first
        assert images.submit(images.first) == images.first, images.attempts
        images.start()

        # the first run, killed once the first host is inside its package upgrade
        runs.append(PlaybookProcess(_upgrade_cmd(upg), upg.tmp / "upgrade-1.log"))
        hit = runs[0].wait_for_task(FULL_UPGRADE_TASK, timeout=3600)
        assert hit is not None, "the run ended (rc=%s) before any host started %r:\n%s" % (
            runs[0].proc.returncode, FULL_UPGRADE_TASK, runs[0].output[-5000:])
        FIGURES["killed_inside_full_upgrade_of"] = hit[1]
        time.sleep(KILL_AFTER_S)
        assert runs[0].proc.poll() is None, "the first run ended by itself: rc=%s" % runs[0].proc.returncode
        runs[0].kill()
        FIGURES["upgrade_first_s"] = round(time.monotonic() - runs[0].t0)
        print("first run killed %d s after %s started its full-upgrade (%d s in all)"
              % (KILL_AFTER_S, hit[1], FIGURES["upgrade_first_s"]), flush=True)
        # figures only: a host inside its dist-upgrade may answer slowly (its sshd is being replaced), and the
        # re-run below is what the test is about
        try:
            FIGURES["after_kill_version_id"] = _os_versions(upg)
            FIGURES["after_kill_dpkg_audit_lines"] = {
                h: len(upg.sh(h, "dpkg --audit 2>&1 || true").splitlines()) for h in upg.hosts}
        except (RackError, subprocess.TimeoutExpired) as exc:
            FIGURES["after_kill_unreadable"] = repr(exc)[:300]

        # the same command again: it must finish the job
        runs.append(PlaybookProcess(_upgrade_cmd(upg), upg.tmp / "upgrade-2.log"))
        rc = runs[1].wait(timeout=3 * 3600)
        FIGURES["upgrade_resume_s"] = round(time.monotonic() - runs[1].t0)
        assert rc == 0, "the resumed upgrade failed (rc=%d):\n%s" % (rc, runs[1].output[-6000:])
        time.sleep(5)
    finally:
        sampler.stop()
        images.stop()
        for r in runs:
            if r.proc.poll() is None:
                r.kill()
    (upg.tmp / "vm-samples.json").write_text(json.dumps(sampler.samples))

    vms = analyse(sampler.samples, VMS)
    steps = [b["t"] - a["t"] for a, b in zip(sampler.samples, sampler.samples[1:])]
    FIGURES["samples"] = {"count": len(sampler.samples), "max_interval_s": round(max(steps or [0]), 1),
                          "mean_interval_s": round(sum(steps) / len(steps), 2) if steps else None}
    FIGURES["longest_pause_s"] = {vm: f["longest_pause_s"] for vm, f in vms.items()}
    FIGURES["longest_counter_stall_s"] = {vm: f["longest_counter_stall_s"] for vm, f in vms.items()}
    FIGURES["vms"] = vms
    order = []
    for r in runs:
        order += [h for h in r.order(FULL_UPGRADE_TASK) if h not in order]
    FIGURES["upgrade_order"] = order
    images_fig = images.drain(600)
    images_fig["submit_attempts_failed"] = [a for a in images.attempts if a["queued"] < a["asked"]]
    FIGURES["images"] = images_fig
    versions = _os_versions(upg)
    ceph_versions = _ceph_versions(upg)
    FIGURES["ceph_after"] = {k: sorted(v) for k, v in ceph_versions.items()}
    healthy = _healthy(upg, 300)
    require = upg.ceph("osd", "dump").get("require_osd_release")
    keys = ("deploy_s", "upgrade_first_s", "upgrade_resume_s", "longest_pause_s", "longest_counter_stall_s", "images")
    print("FIGURES %s" % json.dumps({k: FIGURES.get(k) for k in keys}, sort_keys=True))
    print("upgrade details: %s" % json.dumps(FIGURES, sort_keys=True))

    assert set(versions.values()) == {"13"}, versions
    for daemon in ("mon", "mgr", "osd"):
        assert ceph_versions.get(daemon) and all(v.startswith("18.2.") for v in ceph_versions[daemon]), ceph_versions
    assert require == "reef", require
    assert healthy, upg.ceph("health")
    after = _steady(upg)
    assert after["upg-a"] != after["upg-b"], after  # anti-affinity still holds
    if PLAN.get("order"):
        assert order == PLAN["order"], "upgraded in the order %s, check mode announced %s" % (order, PLAN["order"])
    assert order and order[0] == FIGURES["killed_inside_full_upgrade_of"], order
    for vm, f in vms.items():
        assert f["running_at_end"], "%s was not running at the end: %s" % (vm, f)
        # the counter its init loop writes to its RBD disk every second kept going, never went back
        assert f["counter_first"] is not None and f["counter_last"] > f["counter_first"], (vm, f)
        assert f["counter_backwards"] == 0, (vm, f)
        assert f["longest_counter_stall_s"] < MAX_PAUSE_S, "%s: its counter stood still for %.1f s (from %.1f s)" % (
            vm, f["longest_counter_stall_s"], f["counter_stall_at_s"])
        assert f["longest_pause_s"] < MAX_PAUSE_S, "%s ran nowhere for %.1f s (from %.1f s)" % (
            vm, f["longest_pause_s"], f["pause_at_s"])
        assert f["double_running"] <= MAX_DOUBLE_SAMPLES, "%s ran on two hosts in %d consecutive samples" % (
            vm, f["double_running"])
    assert images_fig["submitted"] == IMAGES, images.attempts
    assert images_fig["done"] + images_fig["failed"] == images_fig["submitted"], images_fig
    assert images_fig["failed"] == 0, images_fig


def test_site_after_upgrade_changes_nothing(upg):
    job = run_job(upg, "site.yml", name="site-after-upgrade")
    FIGURES["site_after_upgrade_s"] = round(job.seconds)
    assert_ok(job)
    assert job.changed() == 0, "site.yml changed %d task(s) on the upgraded rack: %s" % (
        job.changed(), job.changed_tasks())


@pytest.mark.parametrize("extravars, text", [
    # Debian 13 ships reef: pacific is a downgrade of the running cluster, and another release needs a repository
    ({"ceph_release": "pacific"}, "ceph_repository"),
    ({"ceph_release": "tentacle"}, "tentacle"),
    # a repository without its signing key
    ({"ceph_repository": {"url": "http://ceph.invalid/debian-reef"}}, "signing_key"),
], ids=["other-release-without-repository", "unknown-release", "repository-without-key"])
def test_ceph_release_refusals_change_nothing(upg, extravars, text):
    """Bad Ceph release settings on the upgraded rack: a clear error, nothing changed (issue #19)."""
    before = _packages(upg)
    job = run_job(upg, "site.yml", extravars, name="ceph-refusal")
    assert job.rc != 0 and job.status == "failed", job.stdout[-3000:]
    msgs = _failure_messages(job)
    assert any(text in m for m in msgs), "no failure message names %r: %s" % (text, msgs)
    assert job.changed() == 0, job.changed_tasks()
    assert _packages(upg) == before
    print("refused (%s): %s" % (text, next(m for m in msgs if text in m)[:300]))
