"""testinfra checks of the converged stack (molecule default scenario, run on every lab host)."""

from __future__ import annotations

import json
import os
import re
import shlex
import time

import pytest
import testinfra
import testinfra.utils.ansible_runner

# the whole inventory directory (molecule's hosts + hosts.yml + the rack's rack.ini + group_vars), not only
# molecule's generated file: the rack inventory holds each host's rack (hc_rack)
INVENTORY = os.path.dirname(os.environ["MOLECULE_INVENTORY_FILE"])
RUNNER = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY)
TESTINFRA_HOSTS = RUNNER.get_hosts("all")
VIRSH = "virsh -c qemu:///system "
WORKER = "/opt/hospital-imaging/venv/bin/hospital-imaging "
WORKER_CONF = " --config /etc/hospital-imaging/worker.yml"


def _variables(host) -> dict:
    return RUNNER.get_variables(host.backend.get_hostname())


def _running(host) -> set[str]:
    return set(host.check_output(VIRSH + "list --state-running --name").split())


def test_libvirtd_active_and_bridge_up(host):
    assert host.service("libvirtd").is_running
    assert host.service("libvirtd").is_enabled
    assert host.interface("br-vm").exists


def test_ceph_mon_listens_on_its_public_address(host):
    short = host.check_output("hostname -s")
    assert host.service("ceph-mon@%s" % short).is_running
    address = _variables(host)["ansible_host"]
    assert host.socket("tcp://%s:3300" % address).is_listening, (address, 3300)
    # msgr v1 is never encrypted: off by default (ceph_msgr_v1), nothing listens on 6789
    assert ":6789 " not in host.check_output("ss -Htln"), "msgr v1 listener on %s" % address


def test_ceph_daemons_encrypt_in_flight(host):
    """msgr2 secure (ceph_ms_mode) for the OSDs of this host and its monitor."""
    osds = host.check_output("cat /var/lib/ceph/osd/ceph-*/whoami").split()
    assert osds
    for osd in osds:
        for option in ("ms_cluster_mode", "ms_service_mode", "ms_client_mode"):
            assert host.check_output("ceph config show osd.%s %s" % (osd, option)) == "secure", (osd, option)
    short = host.check_output("hostname -s")
    assert host.check_output("ceph config show mon.%s ms_mon_service_mode" % short) == "secure"


def test_racks_are_crush_buckets_and_every_pg_spans_three_racks(host):
    """The lab's hosts are in racks r1-r3 (hc_rack): CRUSH has them and every PG has a copy in each rack."""
    if host.backend.get_hostname() != TESTINFRA_HOSTS[0]:
        pytest.skip("cluster-wide check: run from the first host only")
    nodes = json.loads(host.check_output("ceph osd tree --format json"))["nodes"]
    parent = dict((c, n["name"]) for n in nodes for c in n.get("children", []))
    racks = {name: RUNNER.get_variables(name)["hc_rack"] for name in TESTINFRA_HOSTS}
    host_rack = dict((n["name"], parent[n["id"]]) for n in nodes if n["type"] == "host")
    assert host_rack == racks, host_rack
    osd_rack = dict((n["id"], host_rack[parent[n["id"]]]) for n in nodes if n["type"] == "osd")
    pgs = json.loads(host.check_output("ceph pg ls --format json"))
    pgs = pgs["pg_stats"] if isinstance(pgs, dict) else pgs
    assert pgs
    for pg in pgs:
        assert len({osd_rack[o] for o in pg["acting"]}) == len(set(racks.values())) == 3, (pg["pgid"], pg["acting"])


def test_ceph_healthy_with_declared_pools(host):
    health = json.loads(host.check_output("ceph health --format json"))
    assert health["status"] in ("HEALTH_OK", "HEALTH_WARN"), health
    pools = {p["pool_name"]: p for p in json.loads(host.check_output("ceph osd pool ls detail --format json"))}
    for declared in _variables(host)["ceph_pools"]:
        pool = pools[declared["name"]]
        assert pool["pg_num"] == declared["pg_num"], (declared, pool["pg_num"])
        assert list(pool["application_metadata"]) == [declared["application"]]
    osd = json.loads(host.check_output("ceph osd stat --format json"))
    assert osd["num_up_osds"] == osd["num_in_osds"] == osd["num_osds"] == 3


def test_every_defined_domain_runs_and_is_autostarted(host):
    defined = set(host.check_output(VIRSH + "list --all --name").split())
    assert _running(host) == defined, "every defined domain on %s runs" % host.backend.get_hostname()
    assert set(host.check_output(VIRSH + "list --all --autostart --name").split()) == defined


def test_vms_run_once_where_the_placement_allows():
    """Across the rack: every declared VM runs on exactly one host, anti-affinity groups on distinct racks."""
    hosts = {name: testinfra.get_host("ansible://%s?ansible_inventory=%s" % (name, INVENTORY))
             for name in TESTINFRA_HOSTS}
    where: dict[str, list[str]] = {}
    for name, h in hosts.items():
        for vm in _running(h):
            where.setdefault(vm, []).append(name)
    declared = RUNNER.get_variables(TESTINFRA_HOSTS[0])["vm_guests_vms"]
    assert set(where) == {vm["name"] for vm in declared}, where
    assert all(len(on) == 1 for on in where.values()), "a VM runs on two hosts: %s" % where
    # the rack inventory's hc_rack is what kvm_host_rack is templated from in inventories/lab
    racks = {name: RUNNER.get_variables(name)["hc_rack"] for name in TESTINFRA_HOSTS}
    groups: dict[str, list[str]] = {}
    for vm in declared:
        if vm.get("anti_affinity"):
            groups.setdefault(vm["anti_affinity"], []).append(racks[where[vm["name"]][0]])
    for group, used in groups.items():
        assert len(set(used)) == len(used), "anti-affinity %s broken: racks %s" % (group, used)


def test_vm_disk_is_an_rbd_clone_of_the_golden_image(host):
    for vm in _running(host):
        xml = host.check_output(VIRSH + "dumpxml " + vm)
        assert "protocol='rbd'" in xml and "<auth username=" in xml, vm
        image = xml.split("protocol='rbd' name='")[1].split("'")[0]
        info = json.loads(host.check_output("rbd info --format json " + image))
        assert info.get("parent", {}).get("snapshot"), "%s is not a clone: %s" % (image, info)


def test_imaging_worker_active_with_metrics(host):
    svc = host.service("hospital-imaging")
    assert svc.is_running and svc.is_enabled
    address = _variables(host)["ansible_host"]
    metrics = host.check_output("curl -sf http://%s:9108/metrics || python3 -c \"import urllib.request;"
                                "print(urllib.request.urlopen('http://%s:9108/metrics').read().decode())\""
                                % (address, address))
    assert "hospital_imaging_processed" in metrics


def test_a_test_image_is_processed(host):
    if host.backend.get_hostname() != TESTINFRA_HOSTS[0]:
        pytest.skip("one image for the whole fleet (shared RADOS queue): submitted from the first host only")
    status = json.loads(host.check_output(WORKER + "status" + WORKER_CONF))
    host.check_output("/opt/hospital-imaging/venv/bin/python -c \"from hospital_imaging.synthetic import phantom, "
                      "png_bytes; open('/var/tmp/hc-verify.png', 'wb').write(png_bytes(phantom(256, seed=%d)))\"" % (time.time_ns() % 100000))
    host.check_output(WORKER + "submit" + WORKER_CONF + " /var/tmp/hc-verify.png")
    deadline = time.monotonic() + 300
    now = status
    while time.monotonic() < deadline:
        now = json.loads(host.check_output(WORKER + "status" + WORKER_CONF))
        if now["done"] + now["failed"] > status["done"] + status["failed"]:
            break
        time.sleep(2)
    assert now["done"] == status["done"] + 1 and now["failed"] == status["failed"], (status, now)
    assert now["outputs"] >= status["outputs"] + 1


def _monitoring_host():
    name = RUNNER.get_hosts("monitoring")[0]
    return testinfra.get_host("ansible://%s?ansible_inventory=%s" % (name, INVENTORY)), name


def _prometheus_api(path: str):
    mon, name = _monitoring_host()
    url = "http://%s:9090%s" % (RUNNER.get_variables(name)["ansible_host"], path)
    return json.loads(mon.check_output("python3 -c \"import sys, urllib.request; "
                                       "sys.stdout.write(urllib.request.urlopen(sys.argv[1]).read().decode())\" %s"
                                       % shlex.quote(url)))


def _label_values() -> dict:
    """{label name: [values]} of Prometheus' whole TSDB, read on the monitoring host in one call."""
    mon, name = _monitoring_host()
    base = "http://%s:9090/api/v1/" % RUNNER.get_variables(name)["ansible_host"]
    script = ("import json, sys, urllib.request\n"
              "get = lambda p: json.load(urllib.request.urlopen(sys.argv[1] + p))['data']\n"
              "print(json.dumps({n: get('label/%s/values' % n) for n in get('labels')}))\n")
    return json.loads(mon.check_output("python3 -c %s %s" % (shlex.quote(script), shlex.quote(base))))


def test_prometheus_scrapes_every_target():
    """After site.yml: node and libvirt exporters on every host, the Ceph mgr, the imaging workers and
    Prometheus/Alertmanager themselves are scraped and up (issue #18)."""
    expected = ({("node", h) for h in TESTINFRA_HOSTS} | {("libvirt", h) for h in RUNNER.get_hosts("kvm_hosts")}
                | {("imaging", h) for h in RUNNER.get_hosts("imaging_workers")}
                | {("ceph", h) for h in RUNNER.get_hosts("ceph_mgrs")}
                | {(job, h) for job in ("prometheus", "alertmanager") for h in RUNNER.get_hosts("monitoring")})
    deadline = time.monotonic() + 120
    while True:
        health = {(t["labels"]["job"], t["labels"]["host"]): t["health"]
                  for t in _prometheus_api("/api/v1/targets")["data"]["activeTargets"]}
        if set(health) == expected and set(health.values()) == {"up"}:
            return
        assert time.monotonic() < deadline, "targets after 120 s: %s, expected %s" % (health, expected)
        time.sleep(3)


def test_no_patient_identifier_in_any_label():
    """A study submitted under a patient's name is processed; no label value in Prometheus' TSDB carries the
    name (the worker's job ids are not taken from file names)."""
    first = testinfra.get_host("ansible://%s?ansible_inventory=%s" % (TESTINFRA_HOSTS[0], INVENTORY))
    status = json.loads(first.check_output(WORKER + "status" + WORKER_CONF))
    first.check_output("/opt/hospital-imaging/venv/bin/python -c \"from hospital_imaging.synthetic import phantom, "
                       "png_bytes; open('/var/tmp/Doe_Jane_19700101.png', 'wb').write(png_bytes(phantom(256, seed=7)))\"")
    first.check_output(WORKER + "submit" + WORKER_CONF + " /var/tmp/Doe_Jane_19700101.png")
    deadline = time.monotonic() + 300
    now = status
    while now["done"] + now["failed"] <= status["done"] + status["failed"]:
        assert time.monotonic() < deadline, "the study was not processed in 300 s"
        time.sleep(2)
        now = json.loads(first.check_output(WORKER + "status" + WORKER_CONF))
    assert now["done"] == status["done"] + 1, (status, now)
    time.sleep(35)  # one scrape (30 s) after the job
    values = _label_values()
    assert any(v.startswith("hospital_imaging_") for v in values["__name__"]), "the workers' series are missing"
    hits = {n: [v for v in vs if re.search(r"doe_jane|jane_doe|19700101", v, re.I)] for n, vs in values.items()}
    assert not any(hits.values()), hits
