"""tasks_from: silence against a real Alertmanager (Debian's prometheus-alertmanager on 127.0.0.1, own
temp dir, stopped by PID): create, find again (no second silence), check mode, expire (issue #18)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request

import pytest

pytestmark = pytest.mark.skipif(not shutil.which("prometheus-alertmanager"),
                                reason="prometheus-alertmanager missing: apt-get install prometheus-alertmanager")

PLAY = """
- name: Silence a host
  hosts: kvm-01
  gather_facts: false
  tasks:
    - name: Silence
      ansible.builtin.include_role:
        name: hospital.cloud.monitoring
        tasks_from: silence
"""


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(name="alertmanager")
def fixture_alertmanager(tmp_path):
    port = _free_port()
    conf = tmp_path / "alertmanager.yml"
    conf.write_text("route: {receiver: blackhole}\nreceivers: [{name: blackhole}]\n")
    proc = subprocess.Popen(["prometheus-alertmanager", "--config.file=%s" % conf, "--storage.path=%s" % tmp_path,
                             "--web.listen-address=127.0.0.1:%d" % port, "--cluster.listen-address="],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _attempt in range(100):
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/-/ready" % port, timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _silences(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/api/v2/silences" % port, timeout=5) as r:
        return [s for s in json.load(r) if s["status"]["state"] == "active"]


def test_silence_created_once_then_expired(run_playbook, tmp_path, alertmanager):
    inv = tmp_path / "hosts.ini"
    inv.write_text("[monitoring]\nmon-01 ansible_connection=local monitoring_address=127.0.0.1 ansible_python_interpreter=%s\n"
                   "[kvm_hosts]\nkvm-01 ansible_connection=local ansible_python_interpreter=%s\n"
                   % (shutil.which("python3"), shutil.which("python3")))

    def run(state, check=False):
        res = run_playbook(PLAY, extra_vars={"monitoring_alertmanager_port": alertmanager,
                                             "monitoring_silence_state": state, "monitoring_silence_minutes": 30},
                           inventory=inv, check=check)
        assert res.rc == 0, res.stdout[-4000:] + res.stderr[-2000:]
        return res.changed()

    assert run("present", check=True) == 1 and _silences(alertmanager) == []
    assert run("present") == 1
    live = _silences(alertmanager)
    assert len(live) == 1 and live[0]["createdBy"] == "hospital.cloud"
    assert live[0]["matchers"] == [{"name": "host", "value": "kvm-01", "isRegex": False, "isEqual": True}]
    assert run("present", check=True) == 0
    assert run("present") == 0 and len(_silences(alertmanager)) == 1
    assert run("absent", check=True) == 1 and len(_silences(alertmanager)) == 1
    assert run("absent") == 1 and _silences(alertmanager) == []
    assert run("absent") == 0
