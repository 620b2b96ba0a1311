"""Pure helpers of module_utils/ceph/info.py (the ceph_info module): parameters, shapes, sorting."""

from __future__ import annotations

import pytest
import yaml

from ansible_collections.hospital.cloud.plugins.module_utils.ceph import info
from ansible_collections.hospital.cloud.plugins.modules import ceph_info

from refusals import refusal


def params(**kw):
    p = dict((k, None) for k in ceph_info.argument_spec())
    p.update(gather=["health"])
    p.update(kw)
    return p


@pytest.mark.parametrize("gather,keys", [
    (["health"], ["health"]),
    (["images", "health", "images"], ["health", "images"]),
    (["quorum", "monitors", "pools", "osd_dump", "osd_tree"], ["osd_tree", "osd_dump", "pools", "monitors", "quorum"]),
    ([], []),
])
def test_gathered_once_in_a_fixed_order(gather, keys):
    assert info.gathered(params(gather=gather)) == keys


@pytest.mark.parametrize("kw,msg", [
    ({"gather": ["images"]}, "gather images needs pool"),
    ({"gather": ["health", "images"], "pool": ""}, "gather images needs pool"),
    ({"gather": ["images"], "pool": "vms"}, None),
    ({"gather": ["health"]}, None),
    ({"gather": ["health"], "pool": "vms"}, None),
])
def test_validate(kw, msg):
    got = refusal(info.validate, params(**kw))
    assert got == msg if msg is None else msg in got


def test_pool_without_images_is_a_warning_not_an_error():
    assert info.warnings_for(params(pool="vms")) == ["pool vms is only read with gather: [images]; it was ignored"]
    assert info.warnings_for(params(pool="vms", gather=["images"])) == []
    assert info.warnings_for(params()) == []


def test_every_gathered_key_but_images_is_one_mon_read():
    assert set(info.MON_READS) == set(info.GATHER) - {"images"}
    assert info.MON_READS["health"] == ("health", {"detail": "detail"})
    assert info.MON_READS["pools"] == ("osd pool ls", {"detail": "detail"})


def test_shape_monitors_is_the_mons_list_and_others_are_raw():
    dump = {"epoch": 1, "mons": [{"rank": 0, "name": "a", "public_addrs": {"addrvec": []}}]}
    assert info.shape("monitors", dump) == dump["mons"]
    assert info.shape("monitors", {"epoch": 1}) == []
    raw = {"nodes": [], "stray": []}
    assert info.shape("osd_tree", raw) is raw


def test_image_entry_sorts_snapshots_by_id_not_name():
    snaps = [{"id": 9, "name": "a-late", "size": 2048, "protected": 0},
             {"id": 4, "name": "z-early", "size": 1024, "protected": 1}]
    assert info.image_entry("disk", 4096, snaps) == {
        "name": "disk", "size": 4096,
        "snapshots": [{"name": "z-early", "size": 1024, "protected": True},
                      {"name": "a-late", "size": 2048, "protected": False}]}


def test_images_sorted_by_name():
    entries = [info.image_entry(n, 1, []) for n in ("vm-2", "golden", "vm-10")]
    assert [e["name"] for e in info.sorted_images(entries)] == ["golden", "vm-10", "vm-2"]


def test_argument_spec_and_docs_agree():
    spec = ceph_info.argument_spec()
    doc = yaml.safe_load(ceph_info.DOCUMENTATION)
    assert spec["gather"]["choices"] == info.GATHER == doc["options"]["gather"]["choices"]
    assert spec["gather"]["default"] == doc["options"]["gather"]["default"] == ["health"]
    returned = yaml.safe_load(ceph_info.RETURN)
    assert set(returned) == set(info.GATHER) | {"fsid", "calls", "pool_exists"}
    assert {k for k, v in returned.items() if v["returned"] == "always"} == {"fsid", "calls"}
