"""hospital.cloud.ceph_mon_addresses: the old Jinja loop of ceph/tasks/preflight.yml, and the inventory's
ceph_public_address no longer overwritten (issue #15 item 3)."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.hospital.cloud.plugins.filter.ceph_mon import FilterModule, ceph_mon_addresses

NET = "10.0.0.0/24"


def test_found_then_inventory_then_ansible_host_then_unknown():
    hostvars = {
        "m1": {"__ceph_public_address": "10.0.0.11", "ceph_public_address": "10.0.0.99", "ansible_host": "10.0.0.1"},
        "m2": {"ceph_public_address": "10.0.0.12", "ansible_host": "192.168.1.2"},
        "m3": {"ansible_host": "10.0.0.13"},
        "m4": {"ansible_host": "192.168.1.4"},
        "m5": {"ansible_host": "m5.example.org"},
    }
    out = ceph_mon_addresses(hostvars, ["m3", "m1", "m2", "m4", "m5"], NET)
    assert out == {"m3": "10.0.0.13", "m1": "10.0.0.11", "m2": "10.0.0.12", "m4": "", "m5": ""}
    assert list(out) == ["m3", "m1", "m2", "m4", "m5"]


def test_a_monitor_without_hostvars_and_a_name_inside_the_network():
    assert ceph_mon_addresses({}, ["10.0.0.7"], NET) == {"10.0.0.7": "10.0.0.7"}


@pytest.mark.parametrize("hostvars, monitors, network, match", [
    ([], ["m1"], NET, "hostvars"),
    ({}, "m1", NET, "list of hosts"),
    ({}, ["m1"], "not-a-net", "CIDR"),
    ({}, ["m1"], None, "CIDR"),
])
def test_bad_input_is_one_clear_filter_error(hostvars, monitors, network, match):
    with pytest.raises(AnsibleFilterError, match=match):
        ceph_mon_addresses(hostvars, monitors, network)


def test_registered():
    assert FilterModule().filters()["ceph_mon_addresses"] is ceph_mon_addresses
