"""testinfra checks of the converged stack (molecule default scenario, run on every lab host)."""

from __future__ import annotations

import json
import os

import testinfra.utils.ansible_runner

TESTINFRA_HOSTS = testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"]).get_hosts("all")


def test_libvirtd_active_and_bridge_up(host):
    assert host.service("libvirtd").is_running
    assert host.service("libvirtd").is_enabled
    assert host.interface("br-vm").exists


def test_ceph_daemons_and_ports(host):
    short = host.check_output("hostname -s")
    assert host.service("ceph-mon@%s" % short).is_running
    assert host.socket("tcp://3300").is_listening


def test_ceph_healthy_with_declared_pools(host):
    health = json.loads(host.check_output("ceph health --format json"))
    assert health["status"] in ("HEALTH_OK", "HEALTH_WARN"), health
    pools = {p["pool_name"]: p for p in json.loads(host.check_output("ceph osd pool ls detail --format json"))}
    assert pools["vms"]["pg_num"] == 16 and "rbd" in pools["vms"]["application_metadata"]
    assert "rados" in pools["imaging"]["application_metadata"]
    osd = json.loads(host.check_output("ceph osd stat --format json"))
    assert osd["num_up_osds"] == osd["num_osds"] == 3


def test_domains_running_where_planned(host):
    running = host.check_output("virsh -c qemu:///system list --state-running --name").split()
    meta = host.check_output("virsh -c qemu:///system list --all --name").split()
    assert set(running) == set(meta), "every defined domain on %s runs" % host.backend.hostname


def test_imaging_worker_active(host):
    svc = host.service("hospital-imaging")
    assert svc.is_running and svc.is_enabled
