# -*- coding: utf-8 -*-
# Copyright: hospital.cloud maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""hospital.cloud.ceph_lvm_osds / ceph_unencrypted_osds: OSD inventories from ceph-volume listings
(docs in ceph_lvm_osds.yml and ceph_unencrypted_osds.yml next to this file)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError


def _osd_id(value, where):
    try:
        return int(value)
    except (TypeError, ValueError):
        raise AnsibleFilterError("%s: OSD id %r is not a number" % (where, value)) from None


def ceph_lvm_osds(listing, fsid):
    """The OSDs of cluster ``fsid`` in ``ceph-volume lvm list --format json`` output (parsed), one per id.

    Only the ``block`` LV of an OSD is used: it carries the OSD's identity, its data device(s) and
    whether it is encrypted (``ceph.encrypted``: dm-crypt with the key in the monitors' config-key store).
    """
    if not isinstance(listing, dict):
        raise AnsibleFilterError("ceph_lvm_osds: expected the parsed JSON object of 'ceph-volume lvm list'")
    osds = {}
    for key, lvs in listing.items():
        if not isinstance(lvs, list):
            raise AnsibleFilterError("ceph_lvm_osds: entry %r is not a list of volumes" % key)
        for lv in lvs:
            tags = lv.get("tags") or {}
            if lv.get("type") != "block" or tags.get("ceph.cluster_fsid") != fsid:
                continue
            osd_id = _osd_id(tags.get("ceph.osd_id", key), "ceph_lvm_osds")
            osds[osd_id] = {
                "osd_id": osd_id,
                "osd_fsid": tags.get("ceph.osd_fsid", ""),
                "devices": sorted(lv.get("devices") or []),
                "lv_path": lv.get("lv_path", ""),
                "encrypted": str(tags.get("ceph.encrypted", "0")) == "1",
            }
    return [osds[i] for i in sorted(osds)]


def ceph_unencrypted_osds(raw_osds, lvm_osds):
    """'osd.N (device)' for each OSD of this host that is not encrypted at rest, sorted by id.

    ``raw_osds`` are this cluster's entries of ``ceph-volume raw list`` (never encrypted: the role's raw
    OSDs are plain BlueStore); an id that is also an LVM OSD is that LVM OSD seen through its mapped device
    and counts once, as the LVM OSD. ``lvm_osds`` is the output of ceph_lvm_osds.
    """
    lvm = {o["osd_id"]: o for o in lvm_osds or []}
    out = {}
    for osd in raw_osds or []:
        osd_id = _osd_id(osd.get("osd_id"), "ceph_unencrypted_osds")
        if osd_id not in lvm:
            out[osd_id] = "osd.%d (%s, ceph-volume raw)" % (osd_id, osd.get("device", "?"))
    for osd_id, osd in lvm.items():
        if not osd["encrypted"]:
            out[osd_id] = "osd.%d (%s, ceph-volume lvm)" % (osd_id, ", ".join(osd["devices"]) or osd["lv_path"])
    return [out[i] for i in sorted(out)]


class FilterModule:
    """ceph-volume listing filters."""

    def filters(self):
        return {"ceph_lvm_osds": ceph_lvm_osds, "ceph_unencrypted_osds": ceph_unencrypted_osds}
