"""hospital.cloud.ceph_crush_plan: racks as CRUSH buckets, failure domain, idempotence, bad input."""

from __future__ import annotations

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.hospital.cloud.plugins.filter import ceph_crush
from ansible_collections.hospital.cloud.plugins.filter.ceph_crush import ceph_crush_plan

HOSTS = {"h1": "r1", "h2": "r2", "h3": "r3"}


def tree(layout):
    """A `ceph osd tree --format json` for {host: parent bucket}; racks in the layout hang where given."""
    nodes = [{"id": -1, "name": "default", "type": "root", "children": []}]
    ids = {"default": -1}
    racks = layout.get("_racks", {})
    for rack, parent in racks.items():
        ids[rack] = -len(ids) - 1
        nodes.append({"id": ids[rack], "name": rack, "type": "rack", "children": []})
    for host in layout:
        if host != "_racks":
            ids[host] = -len(ids) - 1
            nodes.append({"id": ids[host], "name": host, "type": "host", "children": [len(ids)]})
    by_name = dict((n["name"], n) for n in nodes)
    for rack, parent in racks.items():
        if parent:
            by_name[parent]["children"].append(ids[rack])
    for host, parent in layout.items():
        if host != "_racks":
            by_name[parent]["children"].append(ids[host])
    return {"nodes": nodes, "stray": []}


FRESH = tree({"h1": "default", "h2": "default", "h3": "default"})
DONE = tree({"_racks": {"r1": "default", "r2": "default", "r3": "default"}, "h1": "r1", "h2": "r2", "h3": "r3"})


def test_fresh_cluster_gets_racks_moves_and_rule():
    plan = ceph_crush_plan(HOSTS, FRESH, ["replicated_rule"])
    assert plan["commands"] == [
        ["osd", "crush", "add-bucket", "r1", "rack"], ["osd", "crush", "move", "r1", "root=default"],
        ["osd", "crush", "add-bucket", "r2", "rack"], ["osd", "crush", "move", "r2", "root=default"],
        ["osd", "crush", "add-bucket", "r3", "rack"], ["osd", "crush", "move", "r3", "root=default"],
        ["osd", "crush", "move", "h1", "rack=r1"], ["osd", "crush", "move", "h2", "rack=r2"],
        ["osd", "crush", "move", "h3", "rack=r3"],
        ["osd", "crush", "rule", "create-replicated", "replicated_rack", "default", "rack"]]
    assert plan["failure_domain"] == "rack" and plan["rule"] == "replicated_rack"
    assert plan["rule_exists"] is False and plan["warnings"] == []


def test_nothing_to_do_when_in_place():
    plan = ceph_crush_plan(HOSTS, DONE, ["replicated_rule", "replicated_rack"])
    assert plan["commands"] == [] and plan["rule_exists"] is True and plan["failure_domain"] == "rack"


def test_only_what_differs_is_moved():
    layout = tree({"_racks": {"r1": "default", "r2": None, "r3": "default"}, "h1": "r1", "h2": "r3", "h3": "r3"})
    plan = ceph_crush_plan(HOSTS, layout, ["replicated_rack"])
    assert plan["commands"] == [["osd", "crush", "move", "r2", "root=default"],
                                ["osd", "crush", "move", "h2", "rack=r2"]]


@pytest.mark.parametrize("racks", [{"h1": "r1", "h2": "r1", "h3": "r1"}, {"h1": "r1", "h2": "r2", "h3": "r2"},
                                   {"h1": "", "h2": None, "h3": ""}])
def test_fewer_than_three_racks_keeps_host_domain_and_warns(racks):
    plan = ceph_crush_plan(racks, FRESH, ["replicated_rule"])
    assert plan["failure_domain"] == "host" and plan["rule"] is None and plan["rule_exists"] is True
    assert not any(c[:3] == ["osd", "crush", "rule"] for c in plan["commands"])
    assert "fewer than 3" in plan["warnings"][0]


def test_host_without_osds_is_left_for_the_next_run():
    plan = ceph_crush_plan({"h1": "r1", "h2": "r2", "h3": "r3", "h4": "r1"}, DONE, ["replicated_rack"])
    assert plan["commands"] == []


def test_min_racks_and_names_are_parameters():
    plan = ceph_crush_plan({"h1": "r1", "h2": "r2"}, FRESH, [], rack_rule="two_racks", min_racks=2)
    assert plan["rule"] == "two_racks" and plan["commands"][-1] == [
        "osd", "crush", "rule", "create-replicated", "two_racks", "default", "rack"]


@pytest.mark.parametrize("host_racks, osd_tree, match", [
    ({"h1": "rack 1"}, FRESH, "letters, digits"),
    ({"h1": "h2", "h2": "r1"}, FRESH, "both a host and a rack"),
    ({"h1": "h1x", "h1x": "r2"}, FRESH, "both a host and a rack"),
    ({"h1": "r1"}, {"no": "nodes"}, "ceph osd tree"),
    ({"h1": "h1"}, FRESH, "both a host and a rack"),
    (["h1"], FRESH, "mapping"),
    ({"h1": "h2"}, tree({"h1": "default", "h2": "default"}), "not a rack"),
])
def test_bad_input_is_a_clear_error(host_racks, osd_tree, match):
    with pytest.raises(AnsibleFilterError, match=match):
        ceph_crush_plan(host_racks, osd_tree, [])


def test_missing_root_is_a_clear_error():
    with pytest.raises(AnsibleFilterError, match="no root bucket named 'other'"):
        ceph_crush_plan(HOSTS, FRESH, [], root="other")


def test_registered_and_documented():
    assert ceph_crush.FilterModule().filters() == {"ceph_crush_plan": ceph_crush_plan}
    doc = yaml.safe_load(open(ceph_crush.__file__.replace("ceph_crush.py", "ceph_crush_plan.yml"),
                              encoding="utf-8"))
    returned = set(ceph_crush_plan(HOSTS, FRESH, []))
    assert set(doc["RETURN"]["_value"]["contains"]) == returned
