# -*- coding: utf-8 -*-
# Copyright: hospital.cloud maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""hospital.cloud.ceph_mon_addrvec: monitor address vectors (docs in ceph_mon_addrvec.yml next to this file)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.hospital.cloud.plugins.plugin_utils.ceph.monitors import mon_addrvec


def ceph_mon_addrvec(addresses, msgr_v1=False):
    """{monitor: address vector}; bad input becomes one AnsibleFilterError."""
    try:
        return mon_addrvec(addresses, msgr_v1=msgr_v1)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc)) from None


class FilterModule:
    """Ceph monitor filters."""

    def filters(self):
        return {"ceph_mon_addrvec": ceph_mon_addrvec}
