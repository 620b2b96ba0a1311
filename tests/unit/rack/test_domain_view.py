"""hospital.cloud.domain_view and placement_keys: the cross-host domain view both roles read."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.hospital.cloud.plugins.filter.rack import FilterModule
from ansible_collections.hospital.cloud.plugins.plugin_utils.placement import model

F = FilterModule().filters()


def dom(name, disks=(("vda", "rbd"),), **kw):
    out = {"name": name, "active": True, "autostart": False, "vcpus": 2, "memory": 1024,
           "disks": [{"target": t, "type": ty} for t, ty in disks]}
    out.update(kw)
    return out


@pytest.mark.parametrize("hostvars, hosts, expected", [
    # no host, no domain
    ({}, [], []),
    # a host whose register is missing, skipped or failed (check mode before libvirt is installed) has none
    ({"a": {}, "b": {"reg": {"skipped": True}}, "c": {"reg": {"failed": True, "msg": "no libvirt"}}},
     ["a", "b", "c"], []),
    # host order of the play, then the module's order; hosts not in the play are not read
    ({"b": {"reg": {"domains": [dom("v2"), dom("v1")]}}, "a": {"reg": {"domains": [dom("v3")]}},
      "z": {"reg": {"domains": [dom("zz")]}}},
     ["a", "b"], [("v3", "a"), ("v2", "b"), ("v1", "b")]),
], ids=["empty", "no-result", "order"])
def test_view_hosts_and_order(hostvars, hosts, expected):
    assert [(d["name"], d["host"]) for d in F["domain_view"](hostvars, hosts, "reg")] == expected


@pytest.mark.parametrize("disks, local", [
    ((), []),
    ((("vda", "rbd"), ("vdb", "network")), []),
    ((("vda", "file"), ("vdb", "rbd"), ("vdc", "block")), ["vda", "vdc"]),
    # a disk without a type is not known to be shared: local (rejectattr('type', 'in', ...) kept it)
    (([("vda", None)]), ["vda"]),
], ids=["none", "shared", "mixed", "untyped"])
def test_local_disks(disks, local):
    entry = dom("v", disks=disks)
    if disks and disks[0][1] is None:
        entry["disks"] = [{"target": "vda"}]
    assert F["domain_view"]({"a": {"r": {"domains": [entry]}}}, ["a"], "r")[0]["local_disks"] == local


@pytest.mark.parametrize("metadata, owner", [
    (None, ""), ({}, ""), ({"owner": "radiology"}, ""),
    ({"managed_by": "hospital.cloud.vm_guests"}, "hospital.cloud.vm_guests")])
def test_owner(metadata, owner):
    entry = dom("v")
    if metadata is not None:
        entry["metadata"] = metadata
    view = F["domain_view"]({"a": {"r": {"domains": [entry]}}}, ["a"], "r")
    assert view == [{"name": "v", "host": "a", "active": True, "autostart": False, "vcpus": 2, "memory": 1024,
                     "local_disks": [], "owner": owner, "persistent": True}]


@pytest.mark.parametrize("hostvars, hosts, register, match", [
    ({}, ["a"], "r", "a is not in hostvars"),
    ({"a": {}}, "a", "r", "hosts must be a list"),
    ({"a": {}}, ["a"], "", "register must be"),
    ([], ["a"], "r", "must be hostvars"),
    ({"a": {"r": {"domains": "vm1"}}}, ["a"], "r", "domains must be a list"),
    ({"a": {"r": {"domains": [{"vcpus": 1}]}}}, ["a"], "r", "every domain needs a name"),
    ({"a": {"r": {"domains": [{"name": "v", "disks": "vda"}]}}}, ["a"], "r", "disks must be a list"),
])
def test_bad_input(hostvars, hosts, register, match):
    with pytest.raises(AnsibleFilterError, match=match):
        F["domain_view"](hostvars, hosts, register)


@pytest.mark.parametrize("extra, expected", [
    (None, ["name", "vcpus", "memory", "disk", "anti_affinity", "affinity", "pin", "requires"]),
    (["interfaces", "extra"],
     ["name", "vcpus", "memory", "disk", "anti_affinity", "affinity", "pin", "requires", "interfaces", "extra"]),
    (["name", "extra"], ["name", "vcpus", "memory", "disk", "anti_affinity", "affinity", "pin", "requires", "extra"]),
])
def test_placement_keys(extra, expected):
    assert F["placement_keys"](extra) == expected


def test_placement_keys_are_the_placement_models():
    """One definition: the keys the placement model accepts for a VM."""
    assert F["placement_keys"]() == list(model.VM_KEYS)


def test_placement_keys_bad_input():
    with pytest.raises(AnsibleFilterError, match="list of extra key names"):
        F["placement_keys"]("interfaces")
