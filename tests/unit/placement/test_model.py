"""Input validation and units of the placement filter."""

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.hospital.cloud.plugins.filter.placement import FilterModule
from ansible_collections.hospital.cloud.plugins.plugin_utils.placement.model import (
    PlacementError, build_problem, parse_amount, parse_current)

placement = FilterModule().filters()["placement"]
HOST = {"name": "h1", "vcpus": 8, "memory": 16384, "disk": 100}
VM = {"name": "vm1", "vcpus": 1, "memory": 1024, "disk": 10}


@pytest.mark.parametrize("value,dim,expected", [
    (12, "memory", 12), ("12 GiB", "memory", 12288), ("512MiB", "memory", 512),
    ("1 TiB", "disk", 1024), ("40 GiB", "disk", 40), ("2048", "memory", 2048), (4.0, "vcpus", 4),
])
def test_units(value, dim, expected):
    assert parse_amount(value, dim, "vm x") == expected


@pytest.mark.parametrize("value,dim,match", [
    (-1, "memory", "must not be negative"), ("12 GB", "memory", "MiB|GiB|TiB"),
    ("1.5 GiB", "memory", "MiB|GiB|TiB"), ("512 MiB", "disk", "whole number of GiB"),
    ("4 GiB", "vcpus", "takes no unit"), (True, "vcpus", "must be a number"),
    (None, "memory", "must be a number"), (2.5, "vcpus", "must be a number"),
])
def test_bad_units(value, dim, match):
    with pytest.raises(PlacementError, match=match):
        parse_amount(value, dim, "vm x")


@pytest.mark.parametrize("vms,hosts,match", [
    ([dict(VM, vcpus=-2)], [HOST], "vm vm1: vcpus must not be negative"),
    ([dict(VM, pin="nope")], [HOST], "vm vm1: pin to unknown host nope"),
    ([VM, VM], [HOST], "duplicate vm name"),
    ([VM], [HOST, HOST], "duplicate host name"),
    ([dict(VM, colour="red")], [HOST], "unknown key"),
    ([{"vcpus": 1}], [HOST], "vm #0 has no name"),
    ([VM], [dict(HOST, overcommit={"cpu": 0})], "overcommit.cpu must be a positive number"),
    ([VM], [dict(HOST, reserved={"memory": 99999})], "reserved memory"),
    ([VM], [dict(HOST, maintenance="yes")], "maintenance must be a boolean"),
    ([dict(VM, anti_affinity={"group": "g", "scope": "dc"})], [HOST], "scope must be one of"),
    ([dict(VM, affinity="a", anti_affinity="g"), dict(VM, name="vm2", affinity="a", anti_affinity="g")],
     [HOST], "members share anti-affinity group g"),
    ("vm1", [HOST], "VM list must be a list"),
])
def test_malformed(vms, hosts, match):
    with pytest.raises(PlacementError, match=match):
        build_problem(vms, hosts)
    with pytest.raises(AnsibleFilterError, match=match):
        placement(vms, hosts)


def test_options_validated():
    with pytest.raises(AnsibleFilterError, match="strategy must be one of pack, spread"):
        placement([VM], [HOST], strategy="random")
    with pytest.raises(AnsibleFilterError, match="reserve must be one of"):
        placement([VM], [HOST], reserve="n+2")


def test_current_forms():
    assert parse_current({"a": "h1"}) == {"a": "h1"}
    assert parse_current([{"name": "a", "host": "h1", "state": "running"}]) == {"a": "h1"}
    with pytest.raises(PlacementError, match="listed on both"):
        parse_current([{"name": "a", "host": "h1"}, {"name": "a", "host": "h2"}])
    with pytest.raises(PlacementError, match="current #0"):
        parse_current([{"name": "a"}])


def test_capacity_overcommit_and_reserved():
    prob = build_problem([VM], [dict(HOST, overcommit={"cpu": 4, "ram": 1.5},
                                     reserved={"vcpus": 2, "memory": "4 GiB", "disk": 10})])
    assert prob.hosts[0].capacity == (24, 18432, 90)
