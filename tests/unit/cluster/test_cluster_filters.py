"""hospital.cloud.cluster_problems / cluster_fencing / cluster_vm_problems / cluster_vm_resources (issue #16)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.hospital.cloud.plugins.filter.cluster import FilterModule
from ansible_collections.hospital.cloud.plugins.filter.placement import placement

F = FilterModule().filters()
HOSTS = [{"name": "h%d" % i, "vcpus": 8, "memory": 8192, "disk": 100} for i in (1, 2, 3)]
# two racks of two hosts, for anti-affinity by rack
RACKED = [{"name": "h%d" % i, "vcpus": 8, "memory": 8192, "disk": 100, "rack": "r%d" % ((i + 1) // 2)} for i in (1, 2, 3, 4)]


def _nodes(kind="testbed", count=3):
    return [{"name": "h%d" % i, "address": "10.0.0.%d" % i,
             "power_fence": {"type": kind, "password": "s3cret", "options": {"ip": "10.0.0.%d" % (100 + i)}}}
            for i in range(1, count + 1)]


def _vms():
    return [{"name": "a", "vcpus": 1, "memory": 512, "disk": 1, "ha": True, "anti_affinity": "g"},
            {"name": "b", "vcpus": 2, "memory": "1 GiB", "disk": 1, "ha": True, "anti_affinity": "g"},
            {"name": "c", "vcpus": 1, "memory": 1024, "disk": 1}]


def _plan(vms, hosts=None, current=None):
    keys = ("name", "vcpus", "memory", "disk", "anti_affinity", "affinity", "pin", "requires")
    return placement([{k: v for k, v in vm.items() if k in keys} for vm in vms], hosts or HOSTS, reserve="n+1",
                     strategy="spread", current=current)


def _by_id(elements):
    return {ET.fromstring(e["xml"]).get("id"): (e["section"], ET.fromstring(e["xml"])) for e in elements}


def test_fencing_storage_first_then_power_and_storage_alone_as_fallback():
    els = _by_id(F["cluster_fencing"](_nodes(), {}))
    section, level1 = els["hc-fl-h2-1"]
    assert section == "fencing-topology"
    assert level1.get("devices") == "hc-fence-ceph,hc-fence-power-h2" and level1.get("target") == "h2"
    assert els["hc-fl-h2-2"][1].get("devices") == "hc-fence-ceph"
    ceph = els["hc-fence-ceph"][1]
    params = {p.get("name"): p.get("value") for p in ceph.iter("nvpair")}
    assert params["pcmk_host_map"] == "h1:10.0.0.1;h2:10.0.0.2;h3:10.0.0.3" and params["provides"] == "unfencing"
    props = {p.get("name"): p.get("value") for p in els["hc-options"][1].iter("nvpair")}
    # a reboot would blocklist and at once unblocklist: fencing powers off
    assert props["stonith-action"] == "off" and props["stonith-enabled"] == "true"
    assert props["no-quorum-policy"] == "freeze" and props["placement-strategy"] == "balanced"
    # the password never reaches the CIB: a root-only file read by password_script
    power = els["hc-fence-power-h1"][1]
    values = [p.get("value") for p in power.iter("nvpair")]
    assert "s3cret" not in " ".join(values)
    assert "cat /etc/hospital-cloud/fence/h1.password" in values
    assert els["hc-loc-hc-fence-power-h1-not-self"][1].get("score") == "-INFINITY"


def test_fencing_without_power_fence_has_one_storage_level():
    els = _by_id(F["cluster_fencing"](_nodes("none"), {}))
    assert els["hc-fl-h1-1"][1].get("devices") == "hc-fence-ceph"
    assert "hc-fl-h1-2" not in els and "hc-fence-power-h1" not in els


@pytest.mark.parametrize("nodes,quorum_device,storage,text", [
    (_nodes(count=2), "", True, "even number of votes"),
    (_nodes(count=1), "", True, "at least 3"),
    ([dict(_nodes()[0], power_fence={"type": "bogus"})] + _nodes()[1:], "", True, "unknown type 'bogus'"),
    ([dict(_nodes()[0], power_fence={"type": "ipmilan", "options": {}})] + _nodes()[1:], "", True, "needs options.ip"),
    ([dict(_nodes()[0], power_fence={"type": "ipmilan", "options": {"ip": "x", "password": "p"}, "password": "p"})]
     + _nodes()[1:], "", True, "not in options"),
    (_nodes("none"), "", False, "could never be fenced"),
])
def test_problems_name_the_cause(nodes, quorum_device, storage, text):
    problems = F["cluster_problems"](nodes, quorum_device, storage)
    assert any(text in p for p in problems), problems
    with pytest.raises(AnsibleFilterError, match=text.replace("(", r"\(")):
        F["cluster_fencing"](nodes, {"quorum_device": quorum_device, "storage_fence": storage})


def test_good_clusters_have_no_problems():
    assert F["cluster_problems"](_nodes()) == []
    assert F["cluster_problems"](_nodes("none")) == []


def test_vm_resources_follow_the_solver_and_keep_apart():
    vms = _vms()
    plan = _plan(vms)
    out = F["cluster_vm_resources"](vms, HOSTS, plan, {"reserve": "n+1", "force_stop": True})
    els = _by_id(out["elements"])
    assert out["vms"] == ["a", "b"] and "vm-c" not in els
    prim = els["vm-a"][1]
    assert (prim.get("class"), prim.get("provider"), prim.get("type")) == ("ocf", "heartbeat", "VirtualDomain")
    params = {p.get("name"): p.get("value") for p in prim.iter("nvpair")}
    assert params["config"] == "/etc/hospital-cloud/vms/a.xml" and params["force_stop"] == "true"
    assert params["allow-migrate"] == "false" and params["autoset_utilization_hv_memory"] == "false"
    assert out["absent"] == ["vm-a-utilization", "vm-b-utilization"]
    util = {p.get("name"): p.get("value") for p in els["vm-b"][1].find("utilization")}
    assert util == {"cpu": "2", "memory": "1024"}
    # homes and failover hosts: the solver's, with the VMs outside the cluster held where they run
    ideal = _plan(vms, current={"c": plan["assignment"]["c"]})
    home_a = els["hc-loc-a-home"][1].get("node")
    assert home_a == ideal["assignment"]["a"]
    assert els["hc-loc-a-failover"][1].get("node") == ideal["failover"][home_a]["a"]
    assert els["hc-col-a-apart-b"][1].get("score") == "-INFINITY"
    # capacity left for the cluster: the host's capacity less the VM outside the cluster
    c_host = plan["assignment"]["c"]
    assert out["nodes"][c_host]["utilization"] == {"cpu": 7, "memory": 7168}


def test_vm_resources_ignore_where_ha_vms_run_now():
    # after a failover the HA VM runs elsewhere: its preferences stay, so site.yml changes nothing
    vms = _vms()
    plan = _plan(vms)
    moved = dict(plan, assignment=dict(plan["assignment"], a=next(h["name"] for h in HOSTS
                                                                  if h["name"] != plan["assignment"]["a"])))
    first = F["cluster_vm_resources"](vms, HOSTS, plan, {})
    after = F["cluster_vm_resources"](vms, HOSTS, moved, {})
    assert first["elements"] == after["elements"]


def test_rack_scope_anti_affinity_uses_the_rack_attribute():
    vms = [dict(v, anti_affinity={"group": "g", "scope": "rack"}) for v in _vms()[:2]]
    out = F["cluster_vm_resources"](vms, RACKED, _plan(vms, RACKED), {})
    col = _by_id(out["elements"])["hc-col-a-apart-b"][1]
    assert col.get("node-attribute") == "rack"
    assert out["nodes"]["h1"]["attributes"] == {"rack": "r1"} and out["nodes"]["h4"]["attributes"] == {"rack": "r2"}


@pytest.mark.parametrize("vm,reserve,text", [
    ({"name": "p", "ha": True, "pin": "h1"}, "n+1", "ha and pin exclude each other"),
    ({"name": "d", "ha": True, "extra": {"disks": [{"type": "file", "path": "/x", "target": "vdb"}]}}, "n+1",
     "ha needs every disk on Ceph"),
    ({"name": "r", "ha": True}, "none", "need vm_guests_placement_reserve: n+1"),
])
def test_vm_problems(vm, reserve, text):
    problems = F["cluster_vm_problems"]([vm], reserve)
    assert any(text in p for p in problems), problems


def test_no_ha_vm_no_problem_and_no_cluster_needed():
    assert F["cluster_vm_problems"](_vms()[2:], "none", []) == []
    assert "need the cluster role" in " ".join(F["cluster_vm_problems"](_vms(), "n+1", []))


def test_ha_vms_that_cannot_fit_are_named():
    big = [{"name": "big%d" % i, "vcpus": 6, "memory": 512, "disk": 1, "ha": True} for i in range(3)]
    with pytest.raises(AnsibleFilterError, match="cannot be placed with an n\\+1 reserve"):
        F["cluster_vm_resources"](big, HOSTS, {"assignment": {}}, {})


@pytest.mark.parametrize("host_vars,wanted", [
    ({}, False),
    ({"vm_guests_vms": [{"name": "a"}, {"name": "b", "ha": False}]}, False),
    ({"vm_guests_vms": [{"name": "a"}, {"name": "b", "ha": True}]}, True),
    ({"vm_guests_vms": [{"name": "a", "ha": "yes"}]}, True),
    ({"vm_guests_ha_default": "true", "vm_guests_vms": []}, True),
    ({"cluster_enabled": True}, True),
    ({"cluster_enabled": "false", "vm_guests_ha_default": "no"}, False),
])
def test_cluster_wanted_by_ha_vms_or_the_switches(host_vars, wanted):
    assert F["cluster_wanted"](host_vars) is wanted


@pytest.mark.parametrize("bad,text", [("kvm-01", "expects a host's variables"),
                                      ({"vm_guests_vms": "a,b"}, "vm_guests_vms must be a list")])
def test_cluster_wanted_bad_input(bad, text):
    with pytest.raises(AnsibleFilterError, match=text):
        F["cluster_wanted"](bad)


def test_node_utilization_is_what_vm_resources_set_and_follows_a_moved_vm():
    # host_maintenance moved the plain VM c: the cluster's capacity must follow it, and equal what the next
    # site.yml computes (cluster_vm_resources with c where it runs now), so that run changes nothing
    vms = _vms()
    plan = _plan(vms)
    c_host = plan["assignment"]["c"]
    other = next(h["name"] for h in HOSTS if h["name"] != c_host)
    moved = dict(plan["assignment"], c=other)
    now = F["cluster_node_utilization"](vms, HOSTS, moved)
    assert now == F["cluster_vm_resources"](vms, HOSTS, dict(plan, assignment=moved), {})["nodes"]
    assert now[other]["utilization"] == {"cpu": 7, "memory": 7168}
    assert now[c_host]["utilization"] == {"cpu": 8, "memory": 8192}
    # HA VMs and VMs the inventory does not declare take nothing from it
    assert F["cluster_node_utilization"](vms, HOSTS, {"a": c_host, "stray": c_host})[c_host]["utilization"] == {
        "cpu": 8, "memory": 8192}


@pytest.mark.parametrize("vms,assignment,text", [
    ("a,b", {}, "vms must be a list of VM dicts"),
    ([{"name": "a"}], ["a"], "assignment must be a dict"),
])
def test_node_utilization_bad_input(vms, assignment, text):
    with pytest.raises(AnsibleFilterError, match=text):
        F["cluster_node_utilization"](vms, HOSTS, assignment)
