"""Independent checks of a placement result against the raw input (used by the tests)."""

import itertools

from ansible_collections.hospital.cloud.plugins.plugin_utils.placement.model import (
    build_problem)

DIMS = ("vcpus", "memory", "disk")


def parsed(vms, hosts):
    prob = build_problem(vms, hosts)
    return {v.name: v for v in prob.vms}, {h.name: h for h in prob.hosts}


def violations(vms, hosts, plan, current=None, assignment=None):
    """Every constraint the assignment breaks (empty list = valid)."""
    pv, ph = parsed(vms, hosts)
    assignment = plan["assignment"] if assignment is None else assignment
    current = current or {}
    out = []
    if set(assignment) != set(pv):
        out.append("assignment covers %s, expected %s" % (sorted(assignment), sorted(pv)))
        return out
    used = {h: [0, 0, 0] for h in ph}
    for name, host in assignment.items():
        v, h = pv[name], ph.get(host)
        if h is None:
            out.append("%s on unknown host %s" % (name, host))
            continue
        for d in range(3):
            used[host][d] += v.demand[d]
        if not v.requires <= h.labels:
            out.append("%s needs %s, %s has %s" % (name, v.requires, host, h.labels))
        if v.pin and v.pin != host:
            out.append("%s pinned to %s, placed on %s" % (name, v.pin, host))
        if h.maintenance and current.get(name) != host:
            out.append("%s is new on maintenance host %s" % (name, host))
    for host, u in used.items():
        for d in range(3):
            if u[d] > ph[host].capacity[d]:
                out.append("%s over capacity in %s: %d > %d" % (host, DIMS[d], u[d],
                                                                ph[host].capacity[d]))
    names = sorted(pv)
    for a, b in itertools.combinations(names, 2):
        va, vb = pv[a], pv[b]
        if va.affinity and va.affinity == vb.affinity and assignment[a] != assignment[b]:
            out.append("affinity %s: %s and %s apart" % (va.affinity, a, b))
        for (ga, sa) in va.anti_affinity:
            for (gb, dummy) in vb.anti_affinity:
                if ga != gb:
                    continue
                ha, hb = ph[assignment[a]], ph[assignment[b]]
                if ha.name == hb.name or (sa == "rack" and ha.rack == hb.rack):
                    out.append("anti-affinity %s: %s and %s on %s/%s" % (ga, a, b, ha.name, hb.name))
    return out


def survives_loss(vms, hosts, assignment, failed):
    """Brute force: can the non-pinned VMs of ``failed`` be re-placed on the other hosts?"""
    pv, ph = parsed(vms, hosts)
    victims = sorted(n for n, h in assignment.items() if h == failed and not pv[n].pin)
    if not victims:
        return True
    # affinity groups move together
    units = {}
    for n in victims:
        units.setdefault(pv[n].affinity or ("vm", n), []).append(n)
    units = list(units.values())
    targets = [h for h in sorted(ph) if h != failed and not ph[h].maintenance]
    stuck = {n for n, h in assignment.items() if h == failed and pv[n].pin}   # go down with it
    base = {n: h for n, h in assignment.items() if n not in victims and n not in stuck}
    for choice in itertools.product(targets, repeat=len(units)):
        trial = dict(base)
        for unit, host in zip(units, choice):
            for n in unit:
                trial[n] = host
        # re-placement may use the failed VMs' own current placement rules, not maintenance
        kept = [v for v in vms if v["name"] in trial]
        if not _breaks(kept, hosts, trial, failed):
            return True
    return False


def _breaks(vms, hosts, trial, failed):
    live = [h for h in hosts if h["name"] != failed]
    plan = {"assignment": trial}
    # VMs already on maintenance hosts may stay there: pass them as current
    return violations(vms, live, plan, current=dict(trial))


def brute_force_feasible(vms, hosts, current=None):
    """Any valid assignment at all? (tiny instances only)"""
    pv, ph = parsed(vms, hosts)
    names = sorted(pv)
    for choice in itertools.product(sorted(ph), repeat=len(names)):
        assignment = dict(zip(names, choice))
        if not violations(vms, hosts, None, current=current, assignment=assignment):
            return True
    return False
