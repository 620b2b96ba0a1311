"""hospital.cloud.vm_guests_placement / vm_guests_plan / vm_guests_report: every branch of the old Jinja of
roles/vm_guests/tasks/placement.yml."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.hospital.cloud.plugins.filter.rack import FilterModule

F = FilterModule().filters()
OWNER = "hospital.cloud.vm_guests"
VMS = [{"name": "x", "vcpus": 1, "memory": 512, "disk": 20, "interfaces": [{"bridge": "br0"}], "extra": {}},
       {"name": "y", "vcpus": 2, "memory": "1 GiB", "anti_affinity": {"group": "g"}, "pin": "b"},
       {"name": "z", "requires": ["ssd"], "affinity": "web", "vcpus": 1, "memory": 256}]


def d(name, host, owner=OWNER):
    return {"name": name, "host": host, "active": True, "autostart": True, "vcpus": 1, "memory": 512,
            "local_disks": [], "owner": owner}


def test_placement_input_keeps_placement_keys_and_no_local_disk():
    out = F["vm_guests_placement"](VMS, [])
    assert out["vms"] == [{"name": "x", "vcpus": 1, "memory": 512, "disk": 0},
                          {"name": "y", "vcpus": 2, "memory": "1 GiB", "anti_affinity": {"group": "g"}, "pin": "b",
                           "disk": 0},
                          {"name": "z", "requires": ["ssd"], "affinity": "web", "vcpus": 1, "memory": 256, "disk": 0}]
    assert out["current"] == {}


@pytest.mark.parametrize("domains, current", [
    ([d("x", "a"), d("q", "b")], {"x": "a"}),                        # unmanaged domains are not placed
    ([d("x", "a"), d("x", "b"), d("y", "c")], {"y": "c"}),           # a duplicate has no current host
    ([d("z", "c"), d("y", "a"), d("x", "b")], {"z": "c", "y": "a", "x": "b"}),
], ids=["unmanaged", "duplicate", "all"])
def test_placement_current(domains, current):
    assert F["vm_guests_placement"](VMS, domains)["current"] == current


PLACED = {"assignment": {"x": "a", "y": "b", "z": "c"},
          "moves": [{"vm": "y", "from": "c", "to": "b", "reason": "pin"}], "summary": {"vms": 3}}


@pytest.mark.parametrize("domains, unreachable, hosts, unverified", [
    ([], [], {"x": "a", "y": "b", "z": "c"}, []),                           # new VMs go where placed
    ([d("y", "c")], [], {"x": "a", "y": "c", "z": "c"}, []),                # defined: managed where it is
    ([d("x", "b"), d("x", "c")], [], {"y": "b", "z": "c"}, []),             # duplicate: left alone
    ([d("y", "c")], ["b"], {"y": "c"}, ["x", "z"]),                          # may run on b: not created
], ids=["new", "defined", "duplicate", "unreachable"])
def test_plan_hosts(domains, unreachable, hosts, unverified):
    plan = F["vm_guests_plan"](PLACED, VMS, domains, unreachable=unreachable, owner=OWNER)
    assert plan["hosts"] == hosts and plan["unverified"] == unverified and plan["unreachable"] == unreachable
    assert plan["assignment"] == PLACED["assignment"] and plan["pending_moves"] == PLACED["moves"]
    assert plan["summary"] == {"vms": 3}


def test_plan_left_alone():
    domains = [d("x", "a"), d("x", "b"), d("old", "a"), d("foreign", "b", owner=""), d("other", "b", owner="x"),
               d("old", "c")]
    plan = F["vm_guests_plan"](PLACED, VMS, domains, unreachable=[], owner=OWNER)
    assert plan["duplicates"] == {"x": ["a", "b"]}
    assert plan["unmanaged"] == {"a": ["old"], "b": ["foreign", "other"], "c": ["old"]}
    assert plan["removed_from_inventory"] == ["old", "old"]


def test_plan_without_vms():
    plan = F["vm_guests_plan"]({}, [], [d("q", "a")], unreachable=[], owner=OWNER)
    assert plan == {"hosts": {}, "assignment": {}, "pending_moves": [], "duplicates": {}, "unverified": [],
                    "unreachable": [], "unmanaged": {"a": ["q"]}, "removed_from_inventory": ["q"], "summary": {}}


@pytest.mark.parametrize("plan, lines", [
    ({"hosts": {}, "pending_moves": [], "duplicates": {}, "unverified": [], "unreachable": [], "unmanaged": {},
      "removed_from_inventory": []}, ["placement: no VMs"]),
    ({"hosts": {"x": "a", "y": "b"}, "duplicates": {"z": ["a", "c"]}, "unverified": ["w"], "unreachable": ["c", "d"],
      "pending_moves": [{"vm": "y", "from": "c", "to": "b", "reason": "pin"},
                        {"vm": "x", "from": "b", "to": "a", "reason": "spread"}],
      "unmanaged": {"a": ["q"]}, "removed_from_inventory": ["old", "older"]},
     ["placement: x on a, y on b",
      "planned moves NOT executed (run the maintenance playbook): y c -> b (pin); x b -> a (spread)",
      'defined on several hosts, left alone: {"z": ["a", "c"]}',
      "not created while c, d is unreachable (they may run there): w",
      'unmanaged domains (not in vm_guests_vms, left alone): {"a": ["q"]}',
      "removed from vm_guests_vms but still defined (remove by hand or with state absent): old, older"]),
], ids=["empty", "everything"])
def test_report(plan, lines):
    assert F["vm_guests_report"](plan) == lines


@pytest.mark.parametrize("name, args, match", [
    ("vm_guests_placement", ("x", []), "vms must be a list of mappings with a name"),
    ("vm_guests_placement", ([{"vcpus": 1}], []), "vms must be a list of mappings with a name"),
    ("vm_guests_placement", (VMS, {"x": "a"}), "output of hospital.cloud.domain_view"),
    ("vm_guests_plan", ([], VMS, []), "placement must be the result"),
    ("vm_guests_plan", ({}, VMS, []), "the placement has no host for x"),
    ("vm_guests_plan", ({}, VMS, [], "b"), "unreachable must be a list"),
    ("vm_guests_report", ({"hosts": {}},), "must be a vm_guests_plan"),
])
def test_bad_input(name, args, match):
    with pytest.raises(AnsibleFilterError, match=match):
        F[name](*args)
