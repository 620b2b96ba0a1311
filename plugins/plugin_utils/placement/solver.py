# -*- coding: utf-8 -*-
# Copyright: hospital.cloud maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Placement pipeline: keep what runs -> greedy -> improve -> exact (CP-SAT) -> n+1 -> result.

Deterministic: every loop is bounded by a count (not the clock) and CP-SAT runs single-threaded
on a deterministic time budget, so the same input gives the same plan.
"""

from __future__ import annotations

from ansible_collections.hospital.cloud.plugins.plugin_utils.placement import bounds, exact, patterns
from ansible_collections.hospital.cloud.plugins.plugin_utils.placement.heuristics import (
    Eligibility, State, check_reserve, diagnose, eliminate_hosts, greedy, host_order,
    keep_current, load, mbs, rebalance, repair_reserve)
from ansible_collections.hospital.cloud.plugins.plugin_utils.placement.model import (
    DIMS, PlacementError, build_problem)

EXACT_MAX_PAIRS = 20000     # items x hosts above which CP-SAT is not tried
MBS_MAX_ITEMS = 600
MBS_RESTARTS = 30


def _moves_of(prob, state):
    return sum(it.current_count for it in prob.items
               if it.current is not None and state.host_of[it.index] != it.current) + \
        sum(it.current_split for it in prob.items)


def _score(prob, state):
    """Lower is better: (moves, hosts used | peak load, balance tie-break)."""
    if prob.strategy == "pack":
        return (_moves_of(prob, state), state.used_hosts())
    loads = [load(state, h) for h in range(len(prob.hosts))]
    return (_moves_of(prob, state), round(max(loads or [0]), 9), round(sum(x * x for x in loads), 9))


def _state_from(prob, host_of, fixed):
    st = State(prob)
    for it in prob.items:
        st.put(it, host_of[it.index])
    st.fixed = {i for i in fixed if host_of[i] == prob.items[i].current}
    return st


def _unconstrained(prob):
    return not prob.groups and all(
        it.pin is None and not it.requires and it.current is None for it in prob.items) and \
        not any(h.maintenance for h in prob.hosts)


def place(prob):
    """Solve ``prob``; return (state, info dict). Raises PlacementError when infeasible."""
    info = {"solver": "heuristic", "status": "heuristic", "warnings": [], "reasons": {}}
    state = State(prob)
    for i, reason in keep_current(prob, state):
        info["reasons"][i] = reason
    order = host_order(prob)
    elig = Eligibility(prob, order)
    pending = [it.index for it in prob.items if state.host_of[it.index] is None]
    base = state.copy()
    failed = greedy(prob, state, pending, prob.strategy, elig)
    lb = bounds.lower_bound(prob)
    info["lower_bound"] = lb
    if not failed:
        if prob.strategy == "pack":
            if state.used_hosts() > lb:        # at the bound nothing can be gained
                eliminate_hosts(prob, state, min(200, len(prob.hosts)), elig)
        else:
            rebalance(prob, state, min(4 * len(prob.items), 2000), elig)
    if prob.strategy == "pack" and (failed or state.used_hosts() > lb) and prob.use_solver and \
            prob.time_limit > 0 and patterns.applicable(prob):
        # plain packing on identical hosts: exact pattern model for exactly lb hosts (also when
        # the greedy ran out of hosts: it may need more than the optimum)
        backend, status, cand = patterns.solve(prob, lb, prob.time_limit)
        if cand is not None and (failed or cand.used_hosts() < state.used_hosts()):
            state, failed = cand, []
            info["solver"], info["status"] = backend, status.lower()
    if not failed and prob.strategy == "pack" and _unconstrained(prob) and \
            len(prob.items) <= MBS_MAX_ITEMS:
        # MBS' with deterministic restarts while above the lower bound
        for seed in [None] + list(range(MBS_RESTARTS)):
            if state.used_hosts() <= lb:
                break
            trial = base.copy()
            rest = mbs(prob, trial, pending, seed=seed)
            if rest:
                rest = greedy(prob, trial, rest, "pack", elig)
            if not rest and trial.used_hosts() < state.used_hosts():
                state = trial
    want_exact = failed or (prob.strategy == "pack" and state.used_hosts() > lb) or \
        prob.strategy == "spread" or _moves_of(prob, state) > 0
    if prob.use_solver and prob.time_limit > 0 and not exact.HAS_ORTOOLS:
        info["warnings"].append(
            "OR-Tools (ortools) is not installed: heuristic plan only, no optimality proof (%s)"
            % exact.ORTOOLS_IMPORT_ERROR)
    if want_exact and prob.use_solver and prob.time_limit > 0 and exact.HAS_ORTOOLS:
        if exact.model_size(prob) > EXACT_MAX_PAIRS:
            pass                 # too large for the time budget: the heuristic plan stands
        else:
            status, host_of = exact.solve(prob, state, prob.time_limit, lb if not failed else 0)
            info["status"] = status.lower()
            if host_of is not None:
                cand = _state_from(prob, host_of, state.fixed)
                if failed or _score(prob, cand) <= _score(prob, state):
                    state, failed = cand, []
                    info["solver"] = "cp-sat"
            elif status == "INFEASIBLE":
                info["status"] = "infeasible"
    if failed:
        raise PlacementError(["vm %s: %s" % (_label(prob.items[i]), diagnose(prob, state, prob.items[i]))
                              for i in failed])
    if prob.reserve == "n+1":
        _ensure_reserve(prob, state, info)
    return state, info


def _label(item):
    if len(item.vms) == 1:
        return item.vms[0].name
    return "%s (affinity group %s with %s)" % (
        item.vms[0].name, item.vms[0].affinity, ", ".join(v.name for v in item.vms[1:]))


def _ensure_reserve(prob, state, info):
    dummy, failures = check_reserve(prob, state)
    if not failures:
        return
    tries = 4 * len(prob.items) + 4
    reason = "reserve n+1: the loss of host %s could not be absorbed" % prob.hosts[failures[0][0]].name
    moved, ok = repair_reserve(prob, state, tries)
    if not ok:
        more, ok = repair_reserve(prob, state, tries, allow_fixed=True)
        moved += more
    for i in moved:
        info["reasons"].setdefault(i, reason)
    if not ok:
        dummy, failures = check_reserve(prob, state)
        raise PlacementError(["reserve n+1: losing host %s leaves vm %s without a host: %s"
                              % (prob.hosts[h].name, _label(prob.items[i]), r)
                              for h, i, r in failures])


def _usage(prob, state, h):
    host = prob.hosts[h]
    out = {"rack": host.rack, "maintenance": host.maintenance,
           "vms": sorted(v.name for i in state.on[h] for v in prob.items[i].vms)}
    for d, dim in enumerate(DIMS):
        cap = host.capacity[d]
        used = cap - state.free[h][d]
        out[dim] = {"used": used, "capacity": cap, "total": host.total[d], "free": cap - used,
                    "percent": round(100.0 * used / cap, 1) if cap else 0.0}
    return out


def result(prob, state, info):
    hosts = prob.hosts
    assignment = {}
    for it in prob.items:
        for v in it.vms:
            assignment[v.name] = hosts[state.host_of[it.index]].name
    current = {}
    for it in prob.items:
        for v in it.vms:
            current[v.name] = it.current
    host_reason = {}
    for i, r in sorted(info["reasons"].items()):
        if "capacity" in r or "anti-affinity" in r:
            host_reason.setdefault(prob.items[i].current, r)
    moves = []
    for it in prob.items:
        main = hosts[it.current].name if it.current is not None else None
        for v in it.vms:
            dest = assignment[v.name]
            old = prob.current_unknown.get(v.name)
            if old is not None:
                moves.append({"vm": v.name, "from": old, "to": dest,
                              "reason": "host %s is not in the host list" % old})
                continue
            old = prob.current_of.get(v.name)
            if old is None or old == dest:
                continue
            if old != main:
                reason = "affinity group %s runs on %s" % (v.affinity, dest)
            else:
                reason = info["reasons"].get(it.index) or host_reason.get(
                    it.current, "makes room for the plan (fewest moves)")
            moves.append({"vm": v.name, "from": old, "to": dest, "reason": reason})
    moves.sort(key=lambda m: m["vm"])
    out = {
        "assignment": dict(sorted(assignment.items())),
        "moves": moves,
        "hosts": {h.name: _usage(prob, state, h.index) for h in hosts},
        "summary": {
            "strategy": prob.strategy, "reserve": prob.reserve, "vms": len(prob.vms),
            "hosts": len(hosts), "hosts_used": state.used_hosts(), "lower_bound": info["lower_bound"],
            "moves": len(moves), "solver": info["solver"], "status": info["status"],
            "peak_percent": round(100 * max([load(state, h.index) for h in hosts] or [0]), 1),
        },
        "warnings": info["warnings"],
    }
    if prob.reserve == "n+1":
        failover, dummy = check_reserve(prob, state)
        out["failover"] = {
            hosts[h].name: {v.name: hosts[g].name for i, g in sorted(plan.items())
                            for v in prob.items[i].vms}
            for h, plan in sorted(failover.items())}
    return out


def placement(vms, hosts, current=None, strategy="pack", reserve="none", time_limit=2.0,
              use_solver=True):
    """Entry point used by the filter: validate, solve, return the result dict."""
    prob = build_problem(vms, hosts, current=current, strategy=strategy, reserve=reserve,
                         time_limit=time_limit, use_solver=use_solver)
    state, info = place(prob)
    return result(prob, state, info)
