# -*- coding: utf-8 -*-
# Copyright: hospital.cloud maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""hospital.cloud.ceph_mon_addrvec, ceph_mon_addresses and ceph_admin_host (docs in the .yml files next to this file)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.hospital.cloud.plugins.plugin_utils.ceph.monitors import admin_host, mon_addresses, mon_addrvec


def ceph_mon_addrvec(addresses, msgr_v1=False):
    """{monitor: address vector}; bad input becomes one AnsibleFilterError."""
    try:
        return mon_addrvec(addresses, msgr_v1=msgr_v1)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc)) from None


def ceph_admin_host(monitors, explicit="", exclude=()):
    """The host Ceph admin operations run on; bad input becomes one AnsibleFilterError."""
    try:
        return admin_host(monitors, explicit=explicit, exclude=exclude)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc)) from None


def ceph_mon_addresses(hostvars, monitors, public_network):
    """{monitor: public address or ''}; bad input becomes one AnsibleFilterError."""
    try:
        return mon_addresses(hostvars, monitors, public_network)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc)) from None


class FilterModule:
    """Ceph monitor filters."""

    def filters(self):
        return {"ceph_mon_addrvec": ceph_mon_addrvec, "ceph_admin_host": ceph_admin_host,
                "ceph_mon_addresses": ceph_mon_addresses}
