# -*- coding: utf-8 -*-
# Copyright: hospital.cloud maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""hospital.cloud.placement (VM-to-host placement), hospital.cloud.capacity_markdown (the plan as a Markdown
table) and hospital.cloud.capacity_live_usage (Prometheus answers as live usage per host); docs in
placement.yml, capacity_markdown.yml and capacity_live_usage.yml next to this file."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.hospital.cloud.plugins.plugin_utils.placement.model import PlacementError
from ansible_collections.hospital.cloud.plugins.plugin_utils.placement.report import live_usage, markdown
from ansible_collections.hospital.cloud.plugins.plugin_utils.placement.solver import placement as solve


def placement(vms, hosts, current=None, strategy="pack", reserve="none", time_limit=2.0,
              use_solver=True):
    """Validate the input and return the plan; every problem becomes one AnsibleFilterError."""
    try:
        return solve(vms, hosts, current=current, strategy=strategy, reserve=reserve,
                     time_limit=time_limit, use_solver=use_solver)
    except PlacementError as exc:
        raise AnsibleFilterError("placement: " + "; ".join(exc.problems)) from None


def capacity_markdown(plan, live=None):
    """The capacity report of a plan (output of hospital.cloud.placement) as Markdown, with the live usage
    (output of hospital.cloud.capacity_live_usage) when given."""
    if not isinstance(plan, dict) or not isinstance(plan.get("hosts"), dict):
        raise AnsibleFilterError("capacity_markdown: expects the plan of hospital.cloud.placement (a dict with hosts)")
    if live is not None and (not isinstance(live, dict) or not isinstance(live.get("hosts"), dict)):
        raise AnsibleFilterError("capacity_markdown: live must be the output of hospital.cloud.capacity_live_usage")
    try:
        return markdown(plan, live)
    except (KeyError, TypeError) as exc:
        raise AnsibleFilterError("capacity_markdown: not a placement plan (%s: %s)" % (type(exc).__name__, exc)) from None


def capacity_live_usage(responses):
    """{name: Prometheus query API answer} for the names of report.LIVE_NAMES -> live usage per host."""
    try:
        return live_usage(responses)
    except ValueError as exc:
        raise AnsibleFilterError("capacity_live_usage: %s" % exc) from None


class FilterModule:
    """Placement filters."""

    def filters(self):
        return {"placement": placement, "capacity_markdown": capacity_markdown,
                "capacity_live_usage": capacity_live_usage}
