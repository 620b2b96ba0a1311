"""The ops tier's rack and job runner, shared by its modules (test_ops.py, test_ops_ha.py) and the upgrade tier.

One virtual rack (hc-ops-1..3, bridge hcops0, 10.77.50.0/24; hc-ops-4 and hc-ops-5 join last). Every playbook runs through
ansible_runner.run(), the engine AWX uses.
"""

from __future__ import annotations

import itertools
import json
import secrets
import shutil
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from lab import power
from lab import rack as rackmod
from lab.rack import ssh
from testbed.ansible_run import REPO, ansible_env
from testbed.pcap_marker import Capture

ansible_runner = pytest.importorskip("ansible_runner", reason="ansible-runner is pinned in requirements.txt")

NAME, SUBNET, BRIDGE = "ops", "10.77.50.0/24", "hcops0"
INVENTORY = Path(__file__).resolve().parent / "inventory"
VIRSH = "virsh -c qemu:///system "
# 64 random bytes (hex) in every ops VM's kernel command line, hence in its RAM: looked for in the captures
MARKER = secrets.token_hex(32)


class Webhook:
    """Alertmanager's webhook receiver: an HTTP server on the rack's bridge address (the rack's hosts reach it,
    nothing else) that keeps every notified alert with the time it arrived."""

    def __init__(self, address: str):
        self.alerts: list[tuple[float, str, dict]] = []  # (monotonic time, firing|resolved, labels)
        self._lock = threading.Lock()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # pylint: disable=invalid-name
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                now = time.monotonic()
                with hook._lock:  # pylint: disable=protected-access
                    hook.alerts += [(now, a.get("status", ""), a.get("labels", {})) for a in body.get("alerts", [])]
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):  # pylint: disable=arguments-differ
                pass

        self.server = ThreadingHTTPServer((address, 0), Handler)
        self.url = "http://%s:%d/alertmanager" % (address, self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def received(self, since: float, status: str | None = None, **labels: str) -> list[tuple[float, str, dict]]:
        with self._lock:
            return [a for a in self.alerts if a[0] >= since and status in (None, a[1])
                    and all(a[2].get(k) == v for k, v in labels.items())]

    def wait(self, since: float, status: str, timeout: float, **labels: str) -> float:
        """Seconds from `since` until an alert with `status` and `labels` arrived."""
        deadline = time.monotonic() + timeout
        while not (got := self.received(since, status, **labels)):
            if time.monotonic() > deadline:
                raise AssertionError("no %s alert %s at the webhook within %d s; it received: %s"
                                     % (status, labels, timeout, self.received(since)))
            time.sleep(1)
        return round(got[0][0] - since, 1)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def install_fence_agent(rack: rackmod.Rack, host: rackmod.Host) -> None:
    """The test-only power fence agent onto a host (fence-agents' library comes with the cluster role)."""
    subprocess.run(["ssh", "-i", rack.ssh_key, *rack.ssh_options(), "-o", "BatchMode=yes", "root@" + host.address,
                    "cat > /usr/sbin/fence_hc_testbed && chmod 0755 /usr/sbin/fence_hc_testbed"],
                   input=power.AGENT_SHEBANG + power.AGENT.read_bytes(), check=True, timeout=60, capture_output=True)


@dataclass
class Ops:
    rack: rackmod.Rack
    tmp: Path
    hosts: list[str] = field(default_factory=lambda: ["hc-ops-1", "hc-ops-2", "hc-ops-3"])
    seq: itertools.count = field(default_factory=itertools.count)
    webhook: Webhook | None = None
    switch: power.PowerSwitch | None = None
    # with_ha: the inventory adds the HA VMs (hence the cluster: site.yml sets it up for them), test_ops_ha.py
    with_ha: bool = False
    # cluster_nodes: the cluster group (group ha_nodes, named by cluster_group in group_vars); None: kvm_hosts
    cluster_nodes: list[str] | None = None

    def inventory(self) -> list[str]:
        """The ops inventory (group_vars from tests/integration/ops/inventory) for self.hosts + the rack's own."""
        inv = self.tmp / "inventory"
        if not inv.exists():
            shutil.copytree(INVENTORY, inv)
        # this run's migration CA (on the controller), the marker the guests keep in RAM, the webhook, the power
        # switch's token and address, and whether the HA VMs are in
        (inv / "group_vars" / "all" / "test_run.yml").write_text(json.dumps(
            {"kvm_host_pki_dir": str(self.tmp / "pki"), "hc_ram_marker": MARKER,
             "hc_webhook_url": self.webhook.url if self.webhook else None,
             "hc_power_token": self.switch.token if self.switch else "", "hc_gateway": self.rack.gateway,
             "hc_with_ha": self.with_ha, **({"cluster_group": "ha_nodes"} if self.cluster_nodes else {})}))
        groups = {"kvm_hosts": self.hosts, "ceph_mons": self.hosts[:3], "ceph_mgrs": self.hosts[:1],
                  "ceph_osds": self.hosts, "monitoring": self.hosts[:1],
                  "ha_nodes": self.cluster_nodes or [],
                  "backup_hosts": self.hosts[2:3],  # test_ops_backup.py
                  "even_pair": self.hosts[:2]}  # test_ops_ha.py: an even cluster (cluster_group=even_pair) refused
        (inv / "hosts.yml").write_text(json.dumps(
            {"all": {"children": {g: {"hosts": {h: None for h in hs}} for g, hs in groups.items()}}}, indent=1))
        return [str(inv), str(Path(self.rack.state_dir) / "inventory.ini")]

    def addresses(self) -> list[str]:
        return [h.address for h in self.rack.hosts]

    def capture(self, name: str) -> Capture:
        """tcpdump on the ops bridge, TCP between the rack's own hosts."""
        return Capture(BRIDGE, self.addresses(), self.tmp / ("%s.pcap" % name))

    def host(self, name: str) -> rackmod.Host:
        return next(h for h in self.rack.hosts if h.name == name)

    def sh(self, name: str, cmd: str, check: bool = True) -> str:
        return ssh(self.rack, self.host(name), cmd, check=check).stdout

    def ceph(self, *args: str):
        return json.loads(self.sh("hc-ops-1", "ceph %s --format json" % " ".join(args)))

    def api(self, port: int, path: str, **query: str):
        """GET from Prometheus (9090) or Alertmanager (9093) on the monitoring host hc-ops-1, JSON decoded."""
        url = "http://%s:%d%s" % (self.host("hc-ops-1").address, port, path)
        if query:
            url += "?" + urllib.parse.urlencode(query)
        with urllib.request.urlopen(url, timeout=10) as r:
            return json.loads(r.read())

    def osd_of(self, host: str) -> int:
        tree = self.ceph("osd", "tree")
        return next(n for n in tree["nodes"] if n["type"] == "host" and n["name"] == host)["children"][0]

    def silences(self, host: str, state: str = "active") -> list[dict]:
        """This collection's Alertmanager silences of host=<host> in that state."""
        return [x for x in self.api(9093, "/api/v2/silences") if x["status"]["state"] == state
                and x["createdBy"] == "hospital.cloud"
                and [(m["name"], m["value"]) for m in x["matchers"]] == [("host", host)]]

    def domains(self) -> dict[str, dict[str, list[str]]]:
        """{vm: {'running': [hosts], 'defined': [hosts]}} over the rack's KVM hosts."""
        out: dict = {}
        for h in self.hosts:
            running = self.sh(h, VIRSH + "list --name").split()
            for d in self.sh(h, VIRSH + "list --all --name").split():
                out.setdefault(d, {"running": [], "defined": []})["defined"].append(h)
                if d in running:
                    out[d]["running"].append(h)
        return out


@dataclass
class Job:
    runner: object
    seconds: float

    @property
    def rc(self) -> int:
        return self.runner.rc

    @property
    def status(self) -> str:
        return self.runner.status

    @property
    def stats(self) -> dict:
        return self.runner.stats or {}

    def changed(self) -> int:
        return sum(self.stats.get("changed", {}).values())

    def failures(self) -> int:
        return sum(self.stats.get("failures", {}).values()) + sum(self.stats.get("dark", {}).values())

    @property
    def stdout(self) -> str:
        return Path(self.runner.config.artifact_dir, "stdout").read_text()

    @property
    def events(self) -> list[dict]:
        # in the order they happened: the files are named <counter>-<uuid>.json ("1287-..." sorts before "78-...")
        files = Path(self.runner.config.artifact_dir, "job_events").glob("*.json")
        return [json.loads(p.read_text()) for p in sorted(files, key=lambda p: int(p.name.split("-", 1)[0]))]

    def artifacts(self) -> dict:
        """set_stats data (AWX job artifacts) from the playbook_on_stats event."""
        for e in self.events:
            if e.get("event") == "playbook_on_stats":
                return e["event_data"].get("artifact_data", {})
        return {}

    def changed_tasks(self) -> list[str]:
        return sorted({"%s@%s" % (e["event_data"].get("task"), e["event_data"].get("host")) for e in self.events
                       if e.get("event") == "runner_on_ok" and e["event_data"].get("res", {}).get("changed")})


def run_job(ops: Ops, playbook: str, extravars: dict | None = None, check: bool = False, name: str = "job") -> Job:
    """ansible_runner.run() of a playbook of this collection, as an AWX job template would launch it."""
    ident = "%02d-%s" % (next(ops.seq), name)
    # one private data dir per job, like AWX (ansible-runner keeps env/cmdline and env/extravars there)
    pdd = ops.tmp / "runner" / ident
    pdd.mkdir(parents=True)
    t0 = time.monotonic()
    runner = ansible_runner.run(
        private_data_dir=str(pdd), ident=ident, playbook=str(REPO / "playbooks" / playbook),
        inventory=ops.inventory(), extravars=extravars or {}, cmdline="--check --diff" if check else None,
        envvars=ansible_env({"ANSIBLE_FORKS": "10"}),  # PATH: the venv first (its ansible-playbook)
        quiet=True, timeout=2400)
    job = Job(runner, time.monotonic() - t0)
    print("%s: rc=%s status=%s changed=%d in %.0f s" % (ident, job.rc, job.status, job.changed(), job.seconds))
    # the runner's artefacts: the command, stdout, per-event JSON
    art = Path(runner.config.artifact_dir)
    assert (art / "stdout").is_file() and (art / "command").is_file()
    assert list((art / "job_events").glob("*.json")), "no job events in %s" % art
    return job


def assert_ok(job: Job) -> None:
    assert job.rc == 0 and job.status == "successful", job.stdout[-5000:]
    assert job.failures() == 0, job.stats
    assert any(e.get("event") == "playbook_on_stats" for e in job.events)


def assert_refused(job: Job, text: str) -> None:
    assert job.rc != 0 and job.status == "failed", job.stdout[-3000:]
    assert "Refused, nothing was changed" in job.stdout and text in job.stdout, job.stdout[-3000:]
    assert job.changed() == 0, job.changed_tasks()
