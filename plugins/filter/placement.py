# -*- coding: utf-8 -*-
# Copyright: hospital.cloud maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""hospital.cloud.placement: VM-to-host placement (docs in placement.yml next to this file)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.hospital.cloud.plugins.plugin_utils.placement.model import PlacementError
from ansible_collections.hospital.cloud.plugins.plugin_utils.placement.solver import placement as solve


def placement(vms, hosts, current=None, strategy="pack", reserve="none", time_limit=2.0,
              use_solver=True):
    """Validate the input and return the plan; every problem becomes one AnsibleFilterError."""
    try:
        return solve(vms, hosts, current=current, strategy=strategy, reserve=reserve,
                     time_limit=time_limit, use_solver=use_solver)
    except PlacementError as exc:
        raise AnsibleFilterError("placement: " + "; ".join(exc.problems)) from None


class FilterModule:
    """Placement filters."""

    def filters(self):
        return {"placement": placement}
