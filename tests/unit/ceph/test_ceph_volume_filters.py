"""Filters that read ceph-volume listings for the ceph role (ceph_osd_dmcrypt): which LVM OSDs belong to
this cluster, and which OSDs of a host are not encrypted at rest."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.hospital.cloud.plugins.filter.ceph_volume import (FilterModule, ceph_lvm_osds,
                                                                           ceph_unencrypted_osds)

FSID = "5e0c2a8d-91b4-4f3a-b6d7-0c8e2f4a1d93"
OTHER = "0b7c6f0e-5b1e-4d4b-8a53-7f6c2b9e4d21"


def lv(osd_id, fsid=FSID, encrypted="1", lv_type="block", devices=("/dev/vdb",)):
    return {"devices": list(devices), "lv_path": "/dev/ceph-x/osd-block-%s" % osd_id, "type": lv_type,
            "tags": {"ceph.cluster_fsid": fsid, "ceph.osd_id": str(osd_id), "ceph.osd_fsid": "f-%s" % osd_id,
                     "ceph.encrypted": encrypted, "ceph.type": lv_type}}


def test_lvm_osds_of_this_cluster_only_block_lvs_sorted():
    listing = {"3": [lv(3, devices=["/dev/vdc"]), lv(3, lv_type="db")], "0": [lv(0, encrypted="0")],
               "7": [lv(7, fsid=OTHER)]}
    assert ceph_lvm_osds(listing, FSID) == [
        {"osd_id": 0, "osd_fsid": "f-0", "devices": ["/dev/vdb"], "lv_path": "/dev/ceph-x/osd-block-0",
         "encrypted": False},
        {"osd_id": 3, "osd_fsid": "f-3", "devices": ["/dev/vdc"], "lv_path": "/dev/ceph-x/osd-block-3",
         "encrypted": True}]


def test_lvm_osds_empty_listing():
    assert not ceph_lvm_osds({}, FSID)


@pytest.mark.parametrize("listing", [[], "x", {"0": "not a list"}, {"0": [lv("zero")]}])
def test_lvm_osds_bad_input_is_a_clear_error(listing):
    with pytest.raises(AnsibleFilterError, match="ceph_lvm_osds"):
        ceph_lvm_osds(listing, FSID)


def test_unencrypted_names_raw_and_plain_lvm_osds():
    lvm = ceph_lvm_osds({"1": [lv(1)], "2": [lv(2, encrypted="0", devices=["/dev/sdc"])]}, FSID)
    raw = [{"osd_id": 0, "device": "/dev/sdb"}]
    assert ceph_unencrypted_osds(raw, lvm) == ["osd.0 (/dev/sdb, ceph-volume raw)",
                                               "osd.2 (/dev/sdc, ceph-volume lvm)"]


def test_lvm_osd_seen_by_raw_list_counts_once_as_lvm():
    """ceph-volume raw list may show an opened dm-crypt OSD through its mapped device."""
    lvm = ceph_lvm_osds({"1": [lv(1)]}, FSID)
    assert not ceph_unencrypted_osds([{"osd_id": 1, "device": "/dev/mapper/x"}] + lvm, lvm)


def test_all_encrypted_reports_nothing():
    assert not ceph_unencrypted_osds([], ceph_lvm_osds({"0": [lv(0)]}, FSID))


def test_filters_are_registered():
    assert set(FilterModule().filters()) == {"ceph_lvm_osds", "ceph_unencrypted_osds"}
