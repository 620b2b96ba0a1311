# -*- coding: utf-8 -*-
# Copyright: hospital.cloud maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""vm_guests: the placement input from vm_guests_vms and the rack, and where each VM is managed."""

from __future__ import annotations

import json
from collections.abc import Mapping

from ansible_collections.hospital.cloud.plugins.plugin_utils.rack.view import (
    RackInputError, check_view, is_list, placement_subset, where)


def _names(vms, who):
    if not is_list(vms) or not all(isinstance(v, Mapping) and isinstance(v.get("name"), str) for v in vms):
        raise RackInputError("%s: vms must be a list of mappings with a name (vm_guests_vms)" % who)
    return [v["name"] for v in vms]


def guests_placement(vms, domains):
    """{vms, current} for hospital.cloud.placement.

    vms: the placement keys of each entry, disk 0 (the root disk is an RBD image: nothing local).
    current: VM -> host for the VMs defined on exactly one host now.
    """
    names = _names(vms, "vm_guests_placement")
    check_view(domains, "vm_guests_placement")
    out = []
    for vm in vms:
        keys = placement_subset(vm)
        keys["disk"] = 0
        out.append(keys)
    current = dict((vm, on[0]) for vm, on in where(domains).items() if vm in names and len(on) == 1)
    return {"vms": out, "current": current}


def guests_plan(placement, vms, domains, unreachable=(), owner=""):
    """vm_guests_plan: where each VM is managed this run and what is left alone.

    placement: the result of hospital.cloud.placement ({} when no VM is declared).
    """
    names = _names(vms, "vm_guests_plan")
    check_view(domains, "vm_guests_plan")
    if placement is None:
        placement = {}
    if not isinstance(placement, Mapping):
        raise RackInputError("vm_guests_plan: placement must be the result of hospital.cloud.placement")
    if not is_list(unreachable):
        raise RackInputError("vm_guests_plan: unreachable must be a list of hosts")
    on = where(domains)
    assignment = placement.get("assignment", {})
    hosts = {}
    for vm in names:
        if vm in on:
            if len(on[vm]) == 1:
                hosts[vm] = on[vm][0]
        elif not unreachable:
            if vm not in assignment:
                raise RackInputError("vm_guests_plan: the placement has no host for %s" % vm)
            hosts[vm] = assignment[vm]
    unmanaged = {}
    for dom in domains:
        if dom["name"] not in names:
            unmanaged.setdefault(dom["host"], []).append(dom["name"])
    return {
        "hosts": hosts,
        "assignment": assignment,
        "pending_moves": placement.get("moves", []),
        "duplicates": dict((vm, h) for vm, h in on.items() if vm in names and len(h) > 1),
        "unverified": [vm for vm in names if vm not in on] if unreachable else [],
        "unreachable": list(unreachable),
        "unmanaged": unmanaged,
        "removed_from_inventory": [d["name"] for d in domains if d["name"] not in names and d.get("owner") == owner],
        "summary": placement.get("summary", {}),
    }


def guests_report(plan):
    """The lines the vm_guests role prints about a vm_guests_plan."""
    if not isinstance(plan, Mapping) or not all(k in plan for k in ("hosts", "pending_moves", "duplicates")):
        raise RackInputError("vm_guests_report: the input must be a vm_guests_plan")
    hosts = ", ".join("%s on %s" % item for item in plan["hosts"].items())
    lines = ["placement: " + (hosts or "no VMs")]
    if plan["pending_moves"]:
        lines.append("planned moves NOT executed (run the maintenance playbook): " + "; ".join(
            "%s %s -> %s (%s)" % (m.get("vm"), m.get("from"), m.get("to"), m.get("reason"))
            for m in plan["pending_moves"]))
    if plan["duplicates"]:
        lines.append("defined on several hosts, left alone: " + _json(plan["duplicates"]))
    if plan.get("unverified"):
        lines.append("not created while %s is unreachable (they may run there): %s"
                     % (", ".join(plan.get("unreachable", [])), ", ".join(plan["unverified"])))
    if plan.get("unmanaged"):
        lines.append("unmanaged domains (not in vm_guests_vms, left alone): " + _json(plan["unmanaged"]))
    if plan.get("removed_from_inventory"):
        lines.append("removed from vm_guests_vms but still defined (remove by hand or with state absent): "
                     + ", ".join(plan["removed_from_inventory"]))
    return lines


def _json(value):
    # what Ansible's to_json prints (json.dumps defaults)
    return json.dumps(value)
