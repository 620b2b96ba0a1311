"""The monitoring role's Prometheus / Alertmanager files, rendered for a sample rack inventory through
`tasks_from: render` (connection local, into a temp dir) and checked by Debian's promtool and amtool
(issue #18). No service is started; no virtual rack."""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap

import pytest
import yaml

pytestmark = pytest.mark.skipif(not (shutil.which("promtool") and shutil.which("amtool")),
                                reason="promtool/amtool missing: apt-get install prometheus prometheus-alertmanager")

INVENTORY = """
[monitoring]
mon-01 ansible_connection=local monitoring_address=127.0.0.1
[kvm_hosts]
kvm-01 ansible_host=10.0.0.1
kvm-02 ansible_host=10.0.0.2 imaging_worker_metrics_port=9200
[ceph_mons]
kvm-01
[ceph_mgrs]
kvm-01
[imaging_workers]
kvm-02
[all:vars]
ansible_python_interpreter={python}
"""

PLAY = """
- name: Render the monitoring configuration
  hosts: mon-01
  gather_facts: true
  tasks:
    - name: Render
      ansible.builtin.include_role:
        name: hospital.cloud.monitoring
        tasks_from: render
"""

RECEIVERS = [{"name": "ops-mail", "type": "email", "to": "ops@example.org"},
             {"name": "ops-hook", "type": "webhook", "url": "http://127.0.0.1:5001/alerts"}]
VMS = [{"name": "pacs-1", "vcpus": 1, "memory": 256, "disk": 4}, {"name": "ris-1", "vcpus": 1, "memory": 256, "disk": 4}]


def _render(run_playbook, tmp_path, check=False, **extra):
    inv = tmp_path / "hosts.ini"
    inv.write_text(INVENTORY.format(python=shutil.which("python3")))
    conf = tmp_path / "etc"
    ev = dict(monitoring_config_dir=str(conf), monitoring_services_managed=False, monitoring_receivers=RECEIVERS,
              monitoring_smtp_smarthost="127.0.0.1:25", monitoring_smtp_from="rack@example.org", vm_guests_vms=VMS)
    ev.update(extra)
    return run_playbook(PLAY, extra_vars=ev, inventory=inv, check=check), conf


def _run(*cmd):
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


def test_renders_valid_files_targets_from_inventory_and_is_idempotent(run_playbook, tmp_path):
    predicted, conf = _render(run_playbook, tmp_path, check=True)
    assert predicted.rc == 0, predicted.stdout[-4000:] + predicted.stderr[-2000:]
    assert predicted.changed() > 0 and not conf.exists()
    res = _render(run_playbook, tmp_path)[0]
    assert res.rc == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert res.changed() == predicted.changed()
    for cmd in (["promtool", "check", "config", str(conf / "prometheus.yml")],
                ["promtool", "check", "rules", str(conf / "hospital_cloud.rules.yml")],
                ["amtool", "check-config", str(conf / "alertmanager.yml")]):
        out = _run(*cmd)
        assert out.returncode == 0, out.stdout + out.stderr
    prom = yaml.safe_load((conf / "prometheus.yml").read_text())
    jobs = {j["job_name"]: {c["labels"]["host"]: c["targets"][0] for c in j["static_configs"]}
            for j in prom["scrape_configs"]}
    assert jobs == {
        "node": {"mon-01": "127.0.0.1:9100", "kvm-01": "10.0.0.1:9100", "kvm-02": "10.0.0.2:9100"},
        "libvirt": {"kvm-01": "10.0.0.1:9177", "kvm-02": "10.0.0.2:9177"},
        "ceph": {"kvm-01": "10.0.0.1:9283"},
        "imaging": {"kvm-02": "10.0.0.2:9200"},
        "prometheus": {"mon-01": "127.0.0.1:9090"},
        "alertmanager": {"mon-01": "127.0.0.1:9093"},
    }
    assert prom["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["127.0.0.1:9093"]
    am = yaml.safe_load((conf / "alertmanager.yml").read_text())
    assert am["route"]["receiver"] == "ops-mail"
    assert {r["name"] for r in am["receivers"]} == {"blackhole", "ops-mail", "ops-hook"}
    assert am["inhibit_rules"][0]["equal"] == ["host"]
    rules = yaml.safe_load((conf / "hospital_cloud.rules.yml").read_text())
    expected = [r["labels"]["domain"] for g in rules["groups"] for r in g["rules"]
                if r.get("record") == "hospital_cloud:vm_expected_running"]
    assert expected == ["pacs-1", "ris-1"]
    # second run, in check mode and for real: nothing changes
    for check in (True, False):
        again = _render(run_playbook, tmp_path, check=check)[0]
        assert again.rc == 0 and again.changed() == 0, again.stdout[-3000:]


def test_alert_rules_fire_as_documented(run_playbook, tmp_path):
    """promtool test rules: a wanted VM not running, a VM running twice, a host down, a certificate near
    its end, a degraded pool, a failed backup, an old backup, a backup that missed its freeze, a failed restore
    drill."""
    res, conf = _render(run_playbook, tmp_path)
    assert res.rc == 0, res.stdout[-4000:]
    tests = {
        "rule_files": [str(conf / "hospital_cloud.rules.yml")],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [
                {"series": 'libvirt_domain_state_code{job="libvirt",host="kvm-01",domain="pacs-1"}', "values": "1x10"},
                {"series": 'libvirt_domain_state_code{job="libvirt",host="kvm-02",domain="pacs-1"}', "values": "1x10"},
                {"series": 'libvirt_domain_state_code{job="libvirt",host="kvm-02",domain="ris-1"}', "values": "5x10"},
                {"series": 'up{job="node",host="kvm-01"}', "values": "0x10"},
                {"series": 'ceph_pg_degraded{job="ceph",host="kvm-01",pool_id="1"}', "values": "3x30"},
                {"series": 'ceph_pool_metadata{job="ceph",host="kvm-01",pool_id="1",name="vms"}', "values": "1x30"},
                {"series": 'hospital_cloud_cert_not_after_seconds{job="node",host="kvm-02",path="/c.pem"}',
                 "values": "864000x10"},
                # every Ceph series is scraped from the mgr's host (kvm-01); osd.3 and mon.kvm-02 live elsewhere
                {"series": 'ceph_osd_up{job="ceph",host="kvm-01",ceph_daemon="osd.3"}', "values": "0x10"},
                {"series": 'ceph_osd_metadata{job="ceph",host="kvm-01",ceph_daemon="osd.3",hostname="kvm-03"}',
                 "values": "1x10"},
                {"series": 'ceph_mon_quorum_status{job="ceph",host="kvm-01",ceph_daemon="mon.kvm-02"}', "values": "0x10"},
                {"series": 'ceph_mon_metadata{job="ceph",host="kvm-01",ceph_daemon="mon.kvm-02",hostname="kvm-02"}',
                 "values": "1x10"},
                {"series": 'ceph_health_status{job="ceph",host="kvm-01",instance="10.0.0.1:9283"}', "values": "2x10"},
                # hc-backup's textfile metrics on the backup host (issue #17): pacs-1 failed its last run, ris-1's
                # last good backup is 30 h old (t=0 is the epoch here), the drill found a broken repository
                {"series": 'hc_backup_last_ok{job="node",host="bk-01",image="vms/pacs-1-root"}', "values": "0x10"},
                {"series": 'hc_backup_last_ok{job="node",host="bk-01",image="vms/ris-1-root"}', "values": "1x10"},
                {"series": 'hc_backup_last_success_timestamp_seconds{job="node",host="bk-01",image="vms/ris-1-root"}',
                 "values": "-108000x10"},
                {"series": 'hc_backup_repository_ok{job="node",host="bk-01"}', "values": "0x10"},
                {"series": 'hc_backup_drill_ok{job="node",host="bk-01",image="vms/ris-1-root"}', "values": "1x10"},
                # db-1 needs filesystem-consistent backups and its agent did not answer; lab-1 does not need them
                {"series": 'hc_backup_last_filesystem_consistent{job="node",host="bk-01",image="vms/db-1-root",'
                           'required="true"}', "values": "0x10"},
                {"series": 'hc_backup_last_filesystem_consistent{job="node",host="bk-01",image="vms/lab-1-root",'
                           'required="false"}', "values": "0x10"},
            ],
            "alert_rule_test": [
                {"eval_time": "5m", "alertname": "VmNotRunning",
                 "exp_alerts": [{"exp_labels": {"severity": "critical", "domain": "ris-1"},
                                 "exp_annotations": {"summary": "VM ris-1 is not running",
                                                     "description": "The inventory wants ris-1 running; no KVM host reports it running."}}]},
                {"eval_time": "5m", "alertname": "VmRunningTwice",
                 "exp_alerts": [{"exp_labels": {"severity": "critical", "domain": "pacs-1"},
                                 "exp_annotations": {"summary": "VM pacs-1 runs on 2 hosts",
                                                     "description": "pacs-1 is running on more than one KVM host: its disk is written twice."}}]},
                {"eval_time": "5m", "alertname": "HostDown",
                 "exp_alerts": [{"exp_labels": {"severity": "critical", "job": "node", "host": "kvm-01"},
                                 "exp_annotations": {"summary": "Host kvm-01 is down",
                                                     "description": "node-exporter on kvm-01 has not answered for 2m; "
                                                                    "the host's other alerts are inhibited."}}]},
                {"eval_time": "5m", "alertname": "MigrationCertificateExpiresSoon",
                 "exp_alerts": [{"exp_labels": {"severity": "warning", "job": "node", "host": "kvm-02", "path": "/c.pem"},
                                 "exp_annotations": {"summary": "A migration TLS certificate of kvm-02 expires in 9d 23h 55m 0s",
                                                     "description": "/c.pem on kvm-02: run site.yml (kvm_host re-issues it) "
                                                                    "before it expires."}}]},
                # host= the daemon's host, so that host's maintenance silence covers it (issue #18)
                {"eval_time": "4m", "alertname": "CephOsdDown", "exp_alerts": []},
                {"eval_time": "6m", "alertname": "CephOsdDown",
                 "exp_alerts": [{"exp_labels": {"severity": "warning", "job": "ceph", "host": "kvm-03",
                                                "hostname": "kvm-03", "ceph_daemon": "osd.3"},
                                 "exp_annotations": {"summary": "osd.3 on kvm-03 is down",
                                                     "description": "osd.3 has been down for 5m."}}]},
                {"eval_time": "6m", "alertname": "CephMonOutOfQuorum",
                 "exp_alerts": [{"exp_labels": {"severity": "warning", "job": "ceph", "host": "kvm-02",
                                                "hostname": "kvm-02", "ceph_daemon": "mon.kvm-02"},
                                 "exp_annotations": {"summary": "Ceph monitor mon.kvm-02 is out of quorum",
                                                     "description": "mon.kvm-02 has been out of the monitor quorum for 5 minutes."}}]},
                # cluster-wide: no host label (the mgr host's silence or HostDown must not hide it)
                {"eval_time": "6m", "alertname": "CephHealthError",
                 "exp_alerts": [{"exp_labels": {"severity": "critical", "job": "ceph"},
                                 "exp_annotations": {"summary": "Ceph health is HEALTH_ERR",
                                                     "description": "The cluster has been in HEALTH_ERR for 5 minutes."}}]},
                {"eval_time": "1m", "alertname": "BackupFailed",
                 "exp_alerts": [{"exp_labels": {"severity": "critical", "job": "node", "host": "bk-01",
                                                "image": "vms/pacs-1-root"},
                                 "exp_annotations": {
                                     "summary": "The last backup of vms/pacs-1-root failed",
                                     "description": "hc-backup on bk-01: the reason is in "
                                                    "/var/lib/hospital-cloud/backup/last-backup.json and "
                                                    "journalctl -u hospital-cloud-backup."}}]},
                {"eval_time": "1m", "alertname": "BackupTooOld",
                 "exp_alerts": [{"exp_labels": {"severity": "warning", "job": "node", "host": "bk-01",
                                                "image": "vms/ris-1-root"},
                                 "exp_annotations": {
                                     "summary": "The last good backup of vms/ris-1-root is 1d 6h 1m 0s old",
                                     "description": "No backup of vms/ris-1-root succeeded on bk-01 for more than "
                                                    "26 hours."}}]},
                {"eval_time": "1m", "alertname": "BackupNotFilesystemConsistent",
                 "exp_alerts": [{"exp_labels": {"severity": "warning", "job": "node", "host": "bk-01",
                                                "image": "vms/db-1-root", "required": "true"},
                                 "exp_annotations": {
                                     "summary": "The last backup of vms/db-1-root is only crash-consistent",
                                     "description": "Its VM needs filesystem-consistent backups (backup_consistency:"
                                                    " filesystem) but its guest agent did not freeze it: the reason"
                                                    " is in /var/lib/hospital-cloud/backup/last-backup.json on"
                                                    " bk-01."}}]},
                {"eval_time": "1m", "alertname": "BackupRestoreDrillFailed",
                 "exp_alerts": [{"exp_labels": {"severity": "critical", "job": "node", "host": "bk-01"},
                                 "exp_annotations": {
                                     "summary": "The restore drill on bk-01 failed",
                                     "description": "A restored backup did not match its snapshot, or restic check "
                                                    "found errors in the repository: "
                                                    "/var/lib/hospital-cloud/backup/last-verify.json on bk-01."}}]},
                {"eval_time": "10m", "alertname": "CephPgsDegradedLong", "exp_alerts": []},
                {"eval_time": "20m", "alertname": "CephPgsDegradedLong",
                 "exp_alerts": [{"exp_labels": {"severity": "warning", "pool_id": "1", "name": "vms"},
                                 "exp_annotations": {"summary": "Pool vms has had degraded PGs for 15m",
                                                     "description": "3 placement groups of pool vms are degraded and not recovering."}}]},
            ],
        }],
    }
    path = tmp_path / "rules_test.yml"
    path.write_text(json.dumps(tests))
    out = _run("promtool", "test", "rules", str(path))
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("extra, words", [
    ({"monitoring_receivers": [{"name": "pager", "type": "sms", "to": "123"}]}, ["email or webhook", "unknown type: pager"]),
    ({"monitoring_scrape_jobs": [{"name": "extra", "hosts": ["ghost"], "port": 9999}]}, ["not in the inventory: ghost"]),
    ({"monitoring_scrape_jobs": [{"name": "extra", "group": "nowhere", "port": 9999}]}, ["group 'nowhere' is not in the inventory"]),
    ({"monitoring_address": "0.0.0.0"}, ["0.0.0.0 and :: are refused"]),
    ({"monitoring_alert_osd_down_for": "5 minutes"}, ["durations like 5m", "5 minutes"]),
])
def test_bad_input_is_refused_clearly_and_nothing_is_written(run_playbook, tmp_path, extra, words):
    res, conf = _render(run_playbook, tmp_path, **extra)
    assert res.rc != 0
    text = textwrap.dedent(res.stdout + res.stderr)
    assert all(w in text for w in words), text[-4000:]
    assert not conf.exists() or not any(conf.iterdir())
