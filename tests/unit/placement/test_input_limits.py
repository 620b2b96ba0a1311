"""Issue #14 item 13: out-of-range placement inputs fail with AnsibleFilterError naming the field,
never with OverflowError (overcommit 1e308) or a run without end (time_limit inf)."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.hospital.cloud.plugins.filter.placement import placement

HOST = {"name": "kvm-01", "vcpus": 8, "memory": "32 GiB", "disk": 100}
VM = {"name": "vm-1", "vcpus": 1, "memory": 1024, "disk": 10}


@pytest.mark.parametrize("host,kw,msg", [
    ({"overcommit": {"cpu": 1e308}}, {}, "overcommit.cpu must be at most 1000"),
    ({"overcommit": {"ram": "1e308"}}, {}, "overcommit.ram must be at most 1000"),
    ({"overcommit": {"cpu": "nan"}}, {}, "overcommit.cpu must be a positive number"),
    ({"overcommit": {"ram": float("inf")}}, {}, "overcommit.ram must be a positive number"),
    ({"vcpus": 10 ** 30}, {}, "vcpus 1000000000000000000000000000000 is larger than the limit"),
    ({"memory": 1e308}, {}, "memory 1e+308 is larger than the limit"),
    ({"memory": "99999999999999999999 TiB"}, {}, "is larger than the limit"),
    ({"reserved": {"disk": 2 ** 70}}, {}, "is larger than the limit"),
    ({}, {"time_limit": float("inf")}, "time_limit must be a number of seconds from 0 to 3600"),
    ({}, {"time_limit": float("nan")}, "time_limit must be a number of seconds from 0 to 3600"),
    ({}, {"time_limit": 10 ** 30}, "time_limit must be a number of seconds from 0 to 3600"),
])
def test_out_of_range_input_is_a_filter_error(host, kw, msg):
    with pytest.raises(AnsibleFilterError) as err:
        placement([VM], [dict(HOST, **host)], **kw)
    assert msg in str(err.value)


def test_vm_amounts_are_bounded_too():
    with pytest.raises(AnsibleFilterError, match="is larger than the limit"):
        placement([dict(VM, memory=2 ** 70)], [HOST])


def test_in_range_values_still_place():
    plan = placement([VM], [dict(HOST, overcommit={"cpu": 1000, "ram": 1.5})], time_limit=3600)
    assert plan
