"""hospital.cloud.ceph_mon_addrvec: the monitors' address vectors of the old __ceph_mon_addrvec Jinja loop."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.hospital.cloud.plugins.filter.ceph_mon import FilterModule, ceph_mon_addrvec


@pytest.mark.parametrize("addresses, v1, expected", [
    ({}, False, {}),
    ({"m1": "10.0.0.1"}, False, {"m1": "[v2:10.0.0.1:3300]"}),
    ({"m1": "10.0.0.1"}, True, {"m1": "[v2:10.0.0.1:3300,v1:10.0.0.1:6789]"}),
    ({"m2": "10.0.0.2", "m1": "10.0.0.1"}, False, {"m2": "[v2:10.0.0.2:3300]", "m1": "[v2:10.0.0.1:3300]"}),
])
def test_addrvec(addresses, v1, expected):
    out = ceph_mon_addrvec(addresses, msgr_v1=v1)
    assert out == expected and list(out) == list(expected)


@pytest.mark.parametrize("addresses, v1, match", [
    (["10.0.0.1"], False, "must be a mapping"),
    ({"m1": "", "m2": None, "m3": "10.0.0.3"}, False, r"no address for monitor\(s\) m1, m2"),
    ({"m1": "10.0.0.1"}, "yes", "msgr_v1 must be a boolean"),
])
def test_bad_input(addresses, v1, match):
    with pytest.raises(AnsibleFilterError, match=match):
        ceph_mon_addrvec(addresses, msgr_v1=v1)


def test_registered():
    assert FilterModule().filters()["ceph_mon_addrvec"] is ceph_mon_addrvec
