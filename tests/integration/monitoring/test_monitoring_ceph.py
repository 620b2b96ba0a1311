"""ceph.yml of the monitoring role on the test bed's real Ceph cluster (1 mon, 1 mgr 'x'): the mgr prometheus
module is bound to the mgr host's management address, enabled, idempotent and honest in check mode, and the
metrics the alert rules use exist in this Ceph release (issue #18). Leaves the cluster as it found it."""

from __future__ import annotations

import re
import shutil
import socket
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ceph]

RULES = Path(__file__).resolve().parents[3] / "roles" / "monitoring" / "templates" / "etc" / "prometheus" / \
    "hospital_cloud.rules.yml.j2"

PLAY = """
- name: Ceph mgr prometheus module
  hosts: x
  gather_facts: false
  environment:
    CEPH_CONF: "{{ hc_conf }}"
    CEPH_ARGS: "--keyring {{ hc_keyring }}"
  tasks:
    - name: Ceph part of the role
      ansible.builtin.include_role:
        name: hospital.cloud.monitoring
        tasks_from: ceph
"""


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _served_metrics(port, wanted, timeout=120):
    """Names of the ceph_* metrics the module serves, polled until `wanted` are all there or the timeout: per-OSD
    series (ceph_osd_stat_bytes*) appear only after the OSDs' next stats report reaches the freshly enabled module,
    which takes longer on a loaded machine."""
    deadline = time.monotonic() + timeout
    served = set()
    while True:
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
                served = set(re.findall(r"^(ceph_[a-z_]+)", r.read().decode(), re.M))
        except OSError:
            pass
        if wanted <= served or time.monotonic() > deadline:
            return served
        time.sleep(2)


def test_mgr_prometheus_module(run_playbook, ceph_cluster, tmp_path):
    port = _free_port()
    inv = tmp_path / "hosts.ini"
    inv.write_text("[ceph_mons]\nx ansible_connection=local monitoring_address=127.0.0.1 ansible_python_interpreter=%s\n"
                   "[ceph_mgrs]\nx\n[monitoring]\nx\n" % shutil.which("python3"))
    ev = {"hc_conf": ceph_cluster.conf, "hc_keyring": ceph_cluster.keyring, "monitoring_ceph_mgr_port": port}

    def run(check=False):
        res = run_playbook(PLAY, extra_vars=ev, inventory=inv, check=check)
        assert res.rc == 0, res.stdout[-4000:] + res.stderr[-2000:]
        return res.changed()

    try:
        assert run(check=True) == 1
        assert "prometheus" not in ceph_cluster.cli_json("mgr", "module", "ls")["enabled_modules"]
        assert run() == 3  # server_addr of mgr.x, server_port, module enable
        assert ceph_cluster.cli("config", "get", "mgr.x", "mgr/prometheus/server_addr").strip() == "127.0.0.1"
        assert "prometheus" in ceph_cluster.cli_json("mgr", "module", "ls")["enabled_modules"]
        assert run(check=True) == 0
        assert run() == 0
        used = set(re.findall(r"\b(ceph_[a-z_]+)\b", RULES.read_text())) - {"ceph_daemon"}
        served = _served_metrics(port, used)
        assert "ceph_health_status" in served, "the mgr prometheus module does not serve on 127.0.0.1:%d" % port
        assert used <= served, "rules use metrics this Ceph does not serve: %s" % sorted(used - served)
    finally:
        ceph_cluster.cli("mgr", "module", "disable", "prometheus", check=False)
        ceph_cluster.cli("config", "rm", "mgr.x", "mgr/prometheus/server_addr", check=False)
        ceph_cluster.cli("config", "rm", "mgr", "mgr/prometheus/server_port", check=False)
