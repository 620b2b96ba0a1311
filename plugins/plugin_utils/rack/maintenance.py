# -*- coding: utf-8 -*-
# Copyright: hospital.cloud maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""host_maintenance: the state of the rack, what a run has to do, its refusals and its moves."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping

from ansible_collections.hospital.cloud.plugins.plugin_utils.rack.view import (
    RackInputError, check_view, is_list, placement_subset, to_bool)

ACTIONS = ("none", "reboot", "upgrade")
MIGRATIONS = ("auto", "live", "cold")


def _mapping(value, what):
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise RackInputError("maintenance_plan: %s must be a mapping (parsed JSON), got %r" % (what, value))
    return value


def _int(value):
    """What Jinja's `int` filter makes of a value (0 when it is not a number)."""
    try:
        return int(value)
    except (TypeError, ValueError):
        try:
            return int(float(value))
        except (TypeError, ValueError):
            return 0


def read_mark(mark):
    """The maintenance mark from the slurp result of the mark file ({} when the file is not there)."""
    if not isinstance(mark, Mapping) or "content" not in mark:
        return {}
    try:
        return json.loads(base64.b64decode(mark["content"]).decode("utf-8"))
    except (binascii.Error, ValueError) as exc:
        raise RackInputError("maintenance_plan: the maintenance mark is not base64 JSON: %s" % exc) from None


def read_upgrades(upgrades):
    """Packages to upgrade from the result of the apt-get count (0 when skipped or empty)."""
    out = upgrades.get("stdout") if isinstance(upgrades, Mapping) else upgrades
    return _int(out or "0")


def observed(domains, host, hostname, mark, health, osd_tree, osd_dump, upgrades):
    """The rack as the plan sees it (the old __host_maintenance_state)."""
    health, osd_tree, osd_dump = (_mapping(health, "health"), _mapping(osd_tree, "osd_tree"),
                                  _mapping(osd_dump, "osd_dump"))
    nodes = osd_tree.get("nodes", [])
    if not is_list(nodes) or not all(isinstance(n, Mapping) for n in nodes):
        raise RackInputError("maintenance_plan: osd_tree.nodes must be a list of mappings")
    bucket = next((n for n in nodes if n.get("type") == "host" and n.get("name") == hostname), {})
    children = bucket.get("children", [])
    names = [d["name"] for d in domains]
    return {
        "domains": list(domains),
        "on_host": [d for d in domains if d["host"] == host],
        "duplicates": sorted(n for n in set(names) if names.count(n) > 1),
        "marked": to_bool(read_mark(mark).get("maintenance", False)),
        "health": health.get("status", "unknown"),
        "checks": health.get("checks", {}),
        "bucket": hostname,
        "osds": sorted(children),
        "osds_up": sorted(n.get("id") for n in nodes if n.get("id") in children and n.get("status") == "up"),
        "noout": "noout" in (osd_dump.get("crush_node_flags", {}) or {}).get(hostname, []),
        "upgrades": read_upgrades(upgrades),
    }


def _refusals(state, host):
    out = []
    healthy = state["health"] == "HEALTH_OK" or (
        state["marked"] and state["noout"] and not set(state["checks"]) - {"OSD_FLAGS"})
    if not healthy:
        out.append(
            "Refused, nothing was changed: Ceph is %s, not HEALTH_OK (%s). Maintenance would take %s's OSDs (%s) "
            "out of a cluster that is already degraded or warning: fix that first."
            % (state["health"],
               "; ".join(str(((c or {}).get("summary") or {}).get("message", "")) for c in state["checks"].values()),
               host, ", ".join("osd.%s" % o for o in state["osds"])))
    local = [d["name"] for d in state["on_host"] if d["local_disks"]]
    if local or state["duplicates"]:
        out.append("Refused, nothing was changed: %s%s" % (
            ("%s on %s have local disks (only Ceph RBD disks can follow a VM to another host). "
             % (", ".join(local), host)) if local else "",
            ("defined on several hosts: %s (remove the stale definition first)." % ", ".join(state["duplicates"]))
            if state["duplicates"] else ""))
    return out


def _placement_input(state, vms, host):
    """Every domain of the rack with the placement keys vm_guests declares for it; disks are in Ceph."""
    declared = {}
    for vm in vms:
        if isinstance(vm, Mapping) and "name" in vm:
            declared[vm["name"]] = vm
    out = []
    for dom in state["domains"]:
        keys = placement_subset(declared.get(dom["name"], {}))
        keys.update({"name": dom["name"], "vcpus": dom["vcpus"], "memory": dom["memory"], "disk": 0})
        out.append(keys)
    current = dict((d["name"], d["host"]) for d in state["domains"] if d["host"] != host)
    return {"vms": out, "current": current}


def maintenance_plan(domains, host, action, return_to_service, hostname, mark=None, health=None, osd_tree=None,
                     osd_dump=None, upgrades=None, vms=None):
    """What a host_maintenance run has to do, decided once.

    Returns {host, action, return_to_service, state, act, enter, leave, refusals, placement}; refusals are the
    messages of the checks that stop the run before anything changes (first one wins).
    """
    check_view(domains, "maintenance_plan")
    if not isinstance(host, str) or not host:
        raise RackInputError("maintenance_plan: host must be a host name, got %r" % (host,))
    if action not in ACTIONS:
        raise RackInputError("maintenance_plan: action must be one of %s, got %r" % (", ".join(ACTIONS), action))
    if not isinstance(hostname, str) or not hostname:
        raise RackInputError("maintenance_plan: hostname must be the host's short name (its CRUSH bucket), got %r"
                             % (hostname,))
    if vms is None:
        vms = []
    if not is_list(vms):
        raise RackInputError("maintenance_plan: vms must be a list (vm_guests_vms)")
    back = to_bool(return_to_service)
    state = observed(domains, host, hostname, mark, health, osd_tree, osd_dump, upgrades)
    # reboot always; upgrade only when packages are to be upgraded
    act = action == "reboot" or (action == "upgrade" and state["upgrades"] > 0)
    enter = bool(state["on_host"]) or act or (
        not back and (not state["marked"] or (bool(state["osds"]) and not state["noout"])))
    leave = back and (enter or state["marked"] or state["noout"])
    return {"host": host, "action": action, "return_to_service": back, "state": state,
            "act": act, "enter": enter, "leave": leave,
            "refusals": _refusals(state, host) if enter else [],
            "placement": _placement_input(state, vms, host)}


def maintenance_moves(plan, placement, migration="auto", check_mode=False):
    """The moves of the host's VMs, the other moves the placement wants, and the lines saying what the run does.

    plan: the result of maintenance_plan; placement: the result of hospital.cloud.placement ({} when the host
    holds no VM).
    """
    if not isinstance(plan, Mapping) or not all(k in plan for k in ("state", "enter", "act", "leave", "host")):
        raise RackInputError("maintenance_moves: the input must be the result of hospital.cloud.maintenance_plan")
    if placement is None:
        placement = {}
    if not isinstance(placement, Mapping):
        raise RackInputError("maintenance_moves: placement must be the result of hospital.cloud.placement")
    if migration not in MIGRATIONS:
        raise RackInputError("maintenance_moves: migration must be one of %s, got %r"
                             % (", ".join(MIGRATIONS), migration))
    state, host, would = plan["state"], plan["host"], "would " if to_bool(check_mode) else ""
    assignment = placement.get("assignment", {})
    moves = []
    # HA VMs (transient domains of hospital.cloud.cluster) leave when the host is put in standby: the cluster
    # moves them, never virsh behind its back (it would start a second copy)
    cluster_vms = [d["name"] for d in state["on_host"] if not d.get("persistent", True)]
    for dom in state["on_host"]:
        if dom["name"] in cluster_vms:
            continue
        if dom["name"] not in assignment:
            raise RackInputError("maintenance_moves: the placement has no host for %s" % dom["name"])
        moves.append({"vm": dom["name"], "from": host, "to": assignment[dom["name"]],
                      "active": dom["active"], "autostart": dom["autostart"]})
    leaving = [d["name"] for d in state["on_host"]]
    other = [m for m in placement.get("moves", []) if m.get("vm") not in leaving]
    summary = []
    if plan["enter"]:
        summary.append("%smark %s in maintenance%s" % (
            would, host, (", set noout on %s" % state["bucket"]) if state["osds"] and not state["noout"] else ""))
    if cluster_vms:
        summary.append("%sput %s in cluster standby: the cluster restarts %s on other hosts"
                       % (would, host, ", ".join(cluster_vms)))
    for move in moves:
        how = (migration if migration != "auto" else "live, cold if that fails") if move["active"] else "cold: shut off"
        summary.append("%smove %s %s -> %s (%s)" % (would, move["vm"], move["from"], move["to"], how))
    if plan["act"]:
        summary.append(plan["action"] + (" (%s packages)" % state["upgrades"] if plan["action"] == "upgrade" else ""))
    if plan["leave"]:
        summary.append("bring %s back: unset noout, clear the mark, wait for HEALTH_OK" % host)
    if not summary:
        summary.append("%s holds no VM, needs no action and is %s: nothing to do"
                       % (host, "back in service" if plan.get("return_to_service") else "in maintenance already"))
    return {"moves": moves, "other_moves": other, "summary": summary, "cluster_vms": cluster_vms}
