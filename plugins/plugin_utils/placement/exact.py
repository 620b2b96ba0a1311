# -*- coding: utf-8 -*-
# Copyright: hospital.cloud maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Exact improvement with OR-Tools CP-SAT (optional dependency, time-bounded, warm-started).

Objective, lexicographic: fewest moves of running VMs, then fewest hosts (pack) or the lowest
peak utilisation (spread). The n+1 reserve is a second-stage problem and is checked (and
repaired) by the caller on whatever this returns.
"""

from __future__ import annotations

try:
    from ortools.sat.python import cp_model
    HAS_ORTOOLS = True
    ORTOOLS_IMPORT_ERROR = None
except ImportError as exc:      # pragma: no cover - depends on the controller
    cp_model = None
    HAS_ORTOOLS = False
    ORTOOLS_IMPORT_ERROR = str(exc)

from ansible_collections.hospital.cloud.plugins.plugin_utils.placement.heuristics import (
    static_reason)

SCALE = 1000          # spread: utilisation in 1/1000


def model_size(prob):
    return len(prob.items) * len(prob.hosts)


def solve(prob, hint, time_limit, lower_bound=0, workers=1):
    """Return (status, host_of list or None). ``hint`` is a heuristic State (may be partial)."""
    if not HAS_ORTOOLS:
        return "MISSING", None
    items, hosts = prob.items, prob.hosts
    nh = len(hosts)
    m = cp_model.CpModel()
    x = {}
    for it in items:
        for h in range(nh):
            if static_reason(prob, it, h) is None:
                x[it.index, h] = m.NewBoolVar("x%d_%d" % (it.index, h))
        if not any((it.index, h) in x for h in range(nh)):
            return "INFEASIBLE", None
    by_host = [[] for dummy in range(nh)]
    for (i, h), var in x.items():
        by_host[h].append((i, var))
    for it in items:
        m.AddExactlyOne(x[it.index, h] for h in range(nh) if (it.index, h) in x)
    pack = prob.strategy == "pack"
    y = [m.NewBoolVar("y%d" % h) for h in range(nh)]
    peak = m.NewIntVar(0, SCALE, "peak") if not pack else None
    for h in range(nh):
        cap = hosts[h].capacity
        for d in range(3):
            terms = [items[i].demand[d] * var for i, var in by_host[h] if items[i].demand[d]]
            if not terms:
                continue
            m.Add(sum(terms) <= cap[d] * y[h])
            if peak is not None and cap[d]:
                m.Add(SCALE * sum(terms) <= cap[d] * peak)
        for i, var in by_host[h]:
            m.AddImplication(var, y[h])
    # anti-affinity: one member per host (or rack)
    keys = {}
    for (i, h), var in x.items():
        for g, scope in items[i].anti_affinity:
            key = (g, h) if scope == "host" else (g, hosts[h].rack)
            keys.setdefault(key, []).append(var)
    for key in sorted(keys, key=str):
        if len(keys[key]) > 1:
            m.AddAtMostOne(keys[key])
    # moves of running VMs (an affinity group counts its members)
    moves = []
    for it in items:
        var = x.get((it.index, it.current)) if it.current is not None else None
        if var is not None:
            moves.append((it.current_count, var))
    move_cost = sum(w * (1 - var) for w, var in moves) if moves else 0
    # symmetry breaking among interchangeable hosts
    referenced = {it.current for it in items} | {it.pin for it in items}
    classes = {}
    for h in range(nh):
        if h in referenced:
            continue
        k = (hosts[h].capacity, hosts[h].labels, hosts[h].maintenance, hosts[h].rack
             if any(s == "rack" for s in prob.groups.values()) else None)
        classes.setdefault(k, []).append(h)
    for members in classes.values():
        for a, b in zip(members, members[1:]):
            m.Add(y[a] >= y[b])
    if len(classes) == 1 and not referenced - {None} and not prob.groups and nh:
        # plain bin packing: item k (largest first) goes to one of the first k+1 hosts
        members = next(iter(classes.values()))
        pos = {h: p for p, h in enumerate(members)}
        ranked = sorted(range(len(items)), key=lambda i: (-sum(items[i].demand), i))
        for k, i in enumerate(ranked):
            for h in members:
                if pos[h] > k and (i, h) in x:
                    m.Add(x[i, h] == 0)
    if pack:
        if lower_bound:
            m.Add(sum(y) >= lower_bound)
        m.Minimize((nh + 1) * move_cost + sum(y))
    else:
        m.Minimize((SCALE + 1) * move_cost + peak)
    for (i, h), var in x.items():
        m.AddHint(var, 1 if hint.host_of[i] == h else 0)
    for h in range(nh):
        m.AddHint(y[h], 1 if hint.on[h] else 0)
    solver = cp_model.CpSolver()
    # deterministic budget (same input, same plan); the wall-clock cap is only a safety net
    # (CP-SAT deterministic time runs ~2-6x wall seconds here, hence the factor 0.5)
    solver.parameters.max_deterministic_time = max(0.05, 0.5 * float(time_limit))
    solver.parameters.max_time_in_seconds = 3 * max(0.05, float(time_limit)) + 1
    solver.parameters.num_workers = workers
    solver.parameters.random_seed = 0
    status = solver.Solve(m)
    name = solver.StatusName(status)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return name, None
    host_of = [None] * len(items)
    for (i, h), var in x.items():
        if solver.BooleanValue(var):
            host_of[i] = h
    return name, host_of
