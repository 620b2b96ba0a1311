# -*- coding: utf-8 -*-
# Copyright: hospital.cloud maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plain packing on identical hosts: can the items fit on exactly ``target`` hosts?

A set-partitioning model over host *patterns* (Gilmore-Gomory / arc-flow family; an arc-flow
graph is a compressed form of the same pattern set). Any packing on ``target`` hosts wastes at
most ``target * capacity - total demand`` per dimension, in all hosts together, so a pattern
(a multiset of item sizes that fits one host) that wastes more than that budget in one host
cannot occur in such a packing. When the budget is tight (Falkenauer's triplets: zero waste)
only few patterns remain and the model is solved in milliseconds, where the assignment model
(CP-SAT in ``exact.py``) and the greedy heuristics fail.

Used only where it is provably exact: every item unconstrained (no pin, labels, anti-affinity,
affinity group split, running host) and all hosts identical and in service; patterns are
checked in every dimension. Enumeration is bounded by counts (patterns, search nodes), the MIP
by a node limit, so the same input gives the same answer. HiGHS (``highspy``) is used if it is
installed, else CP-SAT on the same model, else nothing (the heuristic plan stands).
"""

from __future__ import annotations

try:
    # the raw binding: ``highspy.Highs()`` prints a banner on stdout before options can be set
    from highspy import _core as highs_core
    HAS_HIGHS = hasattr(highs_core, "_Highs")
except ImportError:             # pragma: no cover - depends on the controller
    highs_core = None
    HAS_HIGHS = False

from ansible_collections.hospital.cloud.plugins.plugin_utils.placement import exact
from ansible_collections.hospital.cloud.plugins.plugin_utils.placement.heuristics import (
    ND, State, host_order)

MAX_ITEMS = 2000          # above: not tried (the heuristics are at the bound on such sizes anyway)
MAX_PATTERNS = 5000       # more patterns than this: the budget is too loose for this model
MAX_NODES = 20000         # enumeration search nodes (Falkenauer t249: ~2,500)
LOOSE_FACTOR = 2          # skip when the waste budget is >= this many of the smallest VM
MIP_MAX_NODES = 5000      # HiGHS branch-and-bound nodes (deterministic budget)


def applicable(prob):
    """True when the model is exact for ``prob``: identical in-service hosts, plain items."""
    if not prob.hosts or len(prob.items) > MAX_ITEMS or prob.groups:
        return False
    cap = prob.hosts[0].capacity
    if any(h.capacity != cap or h.maintenance for h in prob.hosts):
        return False
    for it in prob.items:
        if it.pin is not None or it.requires or it.anti_affinity or it.current is not None or \
                it.current_split or not any(it.demand):
            return False
        if any(not isinstance(v, int) for v in it.demand):
            return False
    return all(isinstance(v, int) for v in cap)


def _types(prob):
    """Distinct demand vectors -> item indices (input order)."""
    types = {}
    for it in prob.items:
        types.setdefault(tuple(it.demand), []).append(it.index)
    return types


def enumerate_patterns(sizes, counts, cap, budget, max_patterns=MAX_PATTERNS, max_nodes=MAX_NODES):
    """Every multiset of the item types (``sizes``, at most ``counts`` each) that fits ``cap``
    and leaves at most ``budget`` free in every dimension, as [(type, multiplicity), ...].

    ``sizes`` must be sorted (largest first on the binding dimension). Returns None when a
    limit is hit (the model would not be exact then)."""
    nd = len(cap)
    ntypes = len(sizes)
    if any(budget[d] < 0 for d in range(nd)):
        return []
    # binding dimension: the least relative slack
    bind = min((d for d in range(nd) if cap[d]), key=lambda d: (budget[d] / cap[d], d), default=None)
    if bind is None:
        return None
    # reach[t]: bitset of binding-dimension sums that types t.. can form (for pruning)
    width = cap[bind] + 1
    mask = (1 << width) - 1
    reach = [0] * (ntypes + 1)
    reach[ntypes] = 1
    for t in range(ntypes - 1, -1, -1):
        acc, cur = reach[t + 1], reach[t + 1]
        step = sizes[t][bind]
        if step:
            for dummy in range(counts[t]):
                cur = (cur << step) & mask
                if not cur:
                    break
                acc |= cur
        reach[t] = acc
    out, chosen, nodes = [], [], [0]

    def reachable(t, free):
        lo = max(0, free[bind] - budget[bind])
        window = (1 << (free[bind] - lo + 1)) - 1
        return (reach[t] >> lo) & window != 0

    def dfs(start, free):
        # ``free`` is what the pattern so far leaves; returns False when a limit is hit
        nodes[0] += 1
        if nodes[0] > max_nodes or len(out) > max_patterns:
            return False
        if chosen and all(free[d] <= budget[d] for d in range(nd)):
            out.append(list(chosen))
        for t in range(start, ntypes):
            size = sizes[t]
            if not all(size[d] <= free[d] for d in range(nd)):
                continue
            rest = list(free)
            for mult in range(1, counts[t] + 1):
                for d in range(nd):
                    rest[d] -= size[d]
                if any(rest[d] < 0 for d in range(nd)):
                    break
                if not reachable(t + 1, rest):
                    continue
                chosen.append((t, mult))
                ok = dfs(t + 1, list(rest))
                chosen.pop()
                if not ok:
                    return False
        return True

    if not reachable(0, list(cap)):
        return []
    if not dfs(0, list(cap)):
        return None
    return out


def _solve_highs(counts, pats, target, time_limit):
    model = highs_core._Highs()     # pylint: disable=protected-access
    model.setOptionValue("output_flag", False)
    model.setOptionValue("threads", 1)
    model.setOptionValue("random_seed", 0)
    model.setOptionValue("mip_max_nodes", MIP_MAX_NODES)
    model.setOptionValue("time_limit", 3 * max(0.05, float(time_limit)) + 1)   # safety net only
    npat = len(pats)
    inf = highs_core.kHighsInf
    for dummy in range(npat):
        model.addVar(0.0, float(target))
    idx = list(range(npat))
    model.changeColsCost(npat, idx, [1.0] * npat)
    model.changeColsIntegrality(npat, idx, [highs_core.HighsVarType.kInteger] * npat)
    rows = [[] for dummy in counts]
    for p, pat in enumerate(pats):
        for t, mult in pat:
            rows[t].append((p, float(mult)))
    for t, row in enumerate(rows):
        model.addRow(float(counts[t]), float(counts[t]), len(row), [p for p, m in row],
                     [m for p, m in row])
    model.addRow(-inf, float(target), npat, idx, [1.0] * npat)
    model.run()
    status = model.getModelStatus()
    if status == highs_core.HighsModelStatus.kInfeasible:
        return "INFEASIBLE", None
    if model.getInfo().primal_solution_status != 2:     # 2 = feasible
        return model.modelStatusToString(status).upper(), None
    return "OPTIMAL", [int(round(v)) for v in model.getSolution().col_value]


def _solve_cpsat(counts, pats, target, time_limit):
    cp_model = exact.cp_model
    model = cp_model.CpModel()
    use = [model.NewIntVar(0, target, "p%d" % p) for p in range(len(pats))]
    rows = [[] for dummy in counts]
    for p, pat in enumerate(pats):
        for t, mult in pat:
            rows[t].append(mult * use[p])
    for t, row in enumerate(rows):
        model.Add(sum(row) == counts[t])
    model.Add(sum(use) <= target)
    solver = cp_model.CpSolver()
    solver.parameters.max_deterministic_time = max(0.05, 0.5 * float(time_limit))
    solver.parameters.max_time_in_seconds = 3 * max(0.05, float(time_limit)) + 1
    solver.parameters.num_workers = 1
    solver.parameters.random_seed = 0
    status = solver.Solve(model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return solver.StatusName(status), None
    return "OPTIMAL", [solver.Value(v) for v in use]


def solve(prob, target, time_limit, backend=None):
    """Try to pack ``prob`` on ``target`` hosts. Returns (backend, status, State or None).

    ``backend``: "highs", "cp-sat" or None (the first available)."""
    if backend is None:
        backend = "highs" if HAS_HIGHS else ("cp-sat" if exact.HAS_ORTOOLS else None)
    if backend is None or not applicable(prob) or target <= 0 or target > len(prob.hosts):
        return backend, "not applicable", None
    cap = prob.hosts[0].capacity
    types = _types(prob)
    total = [sum(it.demand[d] for it in prob.items) for d in range(ND)]
    budget = [target * cap[d] - total[d] for d in range(ND)]
    slack = [budget[d] / cap[d] if cap[d] else float("inf") for d in range(ND)]
    bind = min(range(ND), key=lambda d: (slack[d], d))
    smallest = min((k[bind] for k in types if k[bind]), default=0)
    if budget[bind] >= 0 and smallest and budget[bind] >= smallest * LOOSE_FACTOR:
        # a host may stay short of a whole VM: patterns explode, do not spend time enumerating
        return backend, "too many patterns", None
    keys = sorted(types, key=lambda s: (-s[bind], tuple(-v for v in s)))
    counts = [len(types[k]) for k in keys]
    pats = enumerate_patterns(keys, counts, cap, budget)
    if pats is None:
        return backend, "too many patterns", None
    if not pats:
        return backend, "INFEASIBLE", None
    if backend == "highs":
        status, use = _solve_highs(counts, pats, target, time_limit)
    else:
        status, use = _solve_cpsat(counts, pats, target, time_limit)
    if use is None:
        return backend, status, None
    # patterns -> hosts (host order), items of a type in input order; every put is checked
    state = State(prob)
    hosts = iter(host_order(prob))
    queue = {t: list(types[k]) for t, k in enumerate(keys)}
    for p, pat in enumerate(pats):
        for dummy in range(use[p]):
            h = next(hosts, None)
            if h is None:
                return backend, "invalid", None
            for t, mult in pat:
                for dummy2 in range(mult):
                    it = prob.items[queue[t].pop(0)]
                    if not state.can(it, h):
                        return backend, "invalid", None
                    state.put(it, h)
    if any(h is None for h in state.host_of):
        return backend, "invalid", None
    return backend, status, state
