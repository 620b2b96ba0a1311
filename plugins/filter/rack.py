# -*- coding: utf-8 -*-
# Copyright: hospital.cloud maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rack filters of vm_guests and host_maintenance (docs in <filter name>.yml next to this file).

domain_view: every domain of every host; placement_keys: the keys of a VM entry the placement takes;
vm_guests_placement / vm_guests_plan / vm_guests_report: the vm_guests role's plan;
maintenance_plan / maintenance_moves: the host_maintenance role's plan.
The logic is in plugins/plugin_utils/rack; here every RackInputError becomes an AnsibleFilterError.
"""

from __future__ import annotations

import functools

from ansible.errors import AnsibleFilterError

from ansible_collections.hospital.cloud.plugins.plugin_utils.rack import guests, maintenance, view


def _filter(func):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except view.RackInputError as exc:
            raise AnsibleFilterError(str(exc)) from None
    return wrapper


def placement_keys(extra=None):
    """The keys of a vm_guests_vms entry the placement takes, then the extra keys given."""
    if extra is None:
        extra = []
    if not view.is_list(extra) or not all(isinstance(k, str) for k in extra):
        raise view.RackInputError("placement_keys: the input must be a list of extra key names, got %r" % (extra,))
    return list(view.PLACEMENT_KEYS) + [k for k in extra if k not in view.PLACEMENT_KEYS]


class FilterModule:
    """Rack filters."""

    def filters(self):
        return {
            "domain_view": _filter(view.domain_view),
            "placement_keys": _filter(placement_keys),
            "vm_guests_placement": _filter(guests.guests_placement),
            "vm_guests_plan": _filter(guests.guests_plan),
            "vm_guests_report": _filter(guests.guests_report),
            "maintenance_plan": _filter(maintenance.maintenance_plan),
            "maintenance_moves": _filter(maintenance.maintenance_moves),
        }
