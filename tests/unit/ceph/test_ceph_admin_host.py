"""hospital.cloud.ceph_admin_host: the one admin-host rule (it was written five ways in the roles)."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.hospital.cloud.plugins.filter.ceph_mon import FilterModule, ceph_admin_host


@pytest.mark.parametrize("monitors, explicit, exclude, expected", [
    (["m1", "m2", "m3"], "", [], "m1"),
    (["m1", "m2", "m3"], "", ["m1"], "m2"),
    (["m1", "m2", "m3"], "", "m1", "m2"),
    (["m1", "m2", "m3"], "adm", ["adm", "m1"], "adm"),
    (["m1"], "", ["m1"], ""),
    ([], "", [], ""),
])
def test_admin_host(monitors, explicit, exclude, expected):
    assert ceph_admin_host(monitors, explicit=explicit, exclude=exclude) == expected


@pytest.mark.parametrize("monitors, explicit", [("m1", ""), (None, ""), (["m1"], 3)])
def test_bad_input_is_one_clear_filter_error(monitors, explicit):
    with pytest.raises(AnsibleFilterError, match="ceph_admin_host"):
        ceph_admin_host(monitors, explicit=explicit)


def test_registered():
    assert FilterModule().filters()["ceph_admin_host"] is ceph_admin_host
