# -*- coding: utf-8 -*-
# Copyright: hospital.cloud maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Greedy placement, local improvement, n+1 evacuation checks and infeasibility diagnosis.

Pure Python (no numpy) so the filter runs on any controller. Every choice breaks ties on
input order, so the same input always gives the same plan.
"""

from __future__ import annotations

import heapq
import random

from ansible_collections.hospital.cloud.plugins.plugin_utils.placement.model import (
    DIMS, DIM_LABEL, fmt_amount)

ND = len(DIMS)


class State:
    """A (partial) plan: item -> host, free capacity per host, anti-affinity occupancy."""

    def __init__(self, prob):
        self.prob = prob
        self.free = [list(h.capacity) for h in prob.hosts]
        self.host_of = [None] * len(prob.items)
        self.on = [set() for dummy in prob.hosts]
        self.aa = {}                      # (group, host index | ("rack", name)) -> item index
        self.fixed = set()                # items kept where they run (never moved by improvement)

    def copy(self):
        other = State.__new__(State)
        other.prob = self.prob
        other.free = [list(f) for f in self.free]
        other.host_of = list(self.host_of)
        other.on = [set(s) for s in self.on]
        other.aa = dict(self.aa)
        other.fixed = set(self.fixed)
        return other

    def aa_keys(self, item, h):
        rack = self.prob.hosts[h].rack
        return [(g, h) if scope == "host" else (g, ("rack", rack)) for g, scope in item.anti_affinity]

    def conflicts(self, item, h):
        out = []
        for key in self.aa_keys(item, h):
            other = self.aa.get(key)
            if other is not None and other != item.index:
                out.append(other)
        return out

    def fits(self, item, h):
        free = self.free[h]
        dem = item.demand
        return free[0] >= dem[0] and free[1] >= dem[1] and free[2] >= dem[2]

    def can(self, item, h):
        if not self.fits(item, h):
            return False
        if item.anti_affinity:
            for key in self.aa_keys(item, h):
                other = self.aa.get(key)
                if other is not None and other != item.index:
                    return False
        return True

    def put(self, item, h):
        free = self.free[h]
        for d in range(ND):
            free[d] -= item.demand[d]
        self.host_of[item.index] = h
        self.on[h].add(item.index)
        for key in self.aa_keys(item, h):
            self.aa[key] = item.index

    def remove(self, item):
        h = self.host_of[item.index]
        free = self.free[h]
        for d in range(ND):
            free[d] += item.demand[d]
        self.host_of[item.index] = None
        self.on[h].discard(item.index)
        for key in self.aa_keys(item, h):
            if self.aa.get(key) == item.index:
                del self.aa[key]

    def used_hosts(self):
        return sum(1 for s in self.on if s)


# ---------------------------------------------------------------- static filters

def static_reason(prob, item, h, evacuation=False):
    """Why ``item`` can never go to host ``h`` (labels, pin, maintenance, size); None if it can."""
    host = prob.hosts[h]
    if item.pin is not None and item.pin != h:
        return "pinned to %s" % prob.hosts[item.pin].name
    missing = item.requires - host.labels
    if missing:
        return "lacks label(s) %s" % ", ".join(sorted(missing))
    if host.maintenance and (evacuation or item.current != h):
        return "in maintenance"
    for d in range(ND):
        if item.demand[d] > host.capacity[d]:
            return "has only %s %s in total" % (fmt_amount(DIMS[d], host.capacity[d]),
                                                DIM_LABEL[DIMS[d]])
    return None


class Eligibility:
    """Per-signature cache of statically eligible hosts, in a given host order."""

    def __init__(self, prob, order):
        self.prob = prob
        self.order = order
        self.cache = {}

    def hosts(self, item):
        cur = item.current if item.current is not None and \
            self.prob.hosts[item.current].maintenance else None
        key = (item.requires, item.pin, cur, item.demand)
        out = self.cache.get(key)
        if out is None:
            out = [h for h in self.order if static_reason(self.prob, item, h) is None]
            self.cache[key] = out
        return out


def size_key(prob):
    """Normalised size of each item (sum over dimensions of demand / total capacity)."""
    tot = [sum(h.capacity[d] for h in prob.hosts) or 1 for d in range(ND)]
    return [sum(it.demand[d] / tot[d] for d in range(ND)) for it in prob.items]


def host_order(prob):
    tot = [sum(h.capacity[d] for h in prob.hosts) or 1 for d in range(ND)]
    return sorted(range(len(prob.hosts)),
                  key=lambda h: (-sum(prob.hosts[h].capacity[d] / tot[d] for d in range(ND)), h))


def load(state, h):
    cap = state.prob.hosts[h].capacity
    return max(((cap[d] - state.free[h][d]) / cap[d]) if cap[d] else 0.0 for d in range(ND))


def item_order(prob, indices):
    """Most constrained first, then largest first; ties on input order."""
    key = size_key(prob)

    def rank(i):
        it = prob.items[i]
        return (it.pin is None, not it.requires, not it.anti_affinity, -key[i], i)
    return sorted(indices, key=rank)


# ---------------------------------------------------------------- keep what runs

def keep_current(prob, state):
    """Put every item back where it runs when it can stay; return [(item, reason)] to move."""
    moves = []
    keep = []
    for it in prob.items:
        if it.current is None:
            continue
        reason = static_reason(prob, it, it.current)
        if reason:
            moves.append((it.index, "host %s %s" % (prob.hosts[it.current].name, reason)))
        else:
            keep.append(it.index)
    # smallest first keeps the most VMs on an overfull host (fewest moves)
    key = size_key(prob)
    keep.sort(key=lambda i: (key[i], i))
    for i in keep:
        it = prob.items[i]
        h = it.current
        if not state.fits(it, h):
            short = [DIM_LABEL[DIMS[d]] for d in range(ND) if state.free[h][d] < it.demand[d]]
            moves.append((i, "host %s is over capacity (%s)" % (
                prob.hosts[h].name, ", ".join(short))))
            continue
        others = state.conflicts(it, h)
        if others:
            moves.append((i, "anti-affinity with %s on %s" % (
                ", ".join(prob.items[o].name for o in others), prob.hosts[h].name)))
            continue
        state.put(it, h)
        state.fixed.add(i)
    return moves


# ---------------------------------------------------------------- greedy placement

def greedy(prob, state, indices, strategy, elig=None):
    """Place ``indices`` one by one; return the list of items that found no host."""
    order = host_order(prob)
    elig = elig or Eligibility(prob, order)
    failed = []
    if strategy == "pack":
        for i in item_order(prob, indices):
            it = prob.items[i]
            for h in elig.hosts(it):
                if state.can(it, h):
                    state.put(it, h)
                    break
            else:
                failed.append(i)
        return failed
    # spread: least-loaded eligible host first (lazy heap, versioned by load)
    heap = [(load(state, h), h) for h in order]
    heapq.heapify(heap)
    for i in item_order(prob, indices):
        it = prob.items[i]
        ok = set(elig.hosts(it))
        popped, chosen = [], None
        while heap:
            entry = heapq.heappop(heap)
            lval, h = entry
            if lval != load(state, h):
                continue                  # stale entry
            popped.append(entry)
            if h in ok and state.can(it, h):
                chosen = h
                break
        for entry in popped:
            if entry[1] != chosen:
                heapq.heappush(heap, entry)
        if chosen is None:
            failed.append(i)
            continue
        state.put(it, chosen)
        heapq.heappush(heap, (load(state, chosen), chosen))
    return failed


def mbs(prob, state, indices, node_limit=20000, seed=None):
    """Minimum bin slack (Gupta-Ho MBS'): fill host after host with the subset of least slack.

    Used for unconstrained items only (no pin, labels or anti-affinity). ``node_limit`` bounds
    the items scanned per host; ``seed`` perturbs the order (deterministic restarts)."""
    tot = [sum(h.capacity[d] for h in prob.hosts) or 1 for d in range(ND)]
    key = size_key(prob)
    rest = sorted(indices, key=lambda i: (-key[i], i))
    if seed is not None:
        rng = random.Random(seed)
        noisy = {i: key[i] * (1 + 0.3 * rng.random()) for i in rest}
        rest = [rest[0]] + sorted(rest[1:], key=lambda i: (-noisy[i], i))
    for h in host_order(prob):
        if not rest:
            break
        if state.on[h] or prob.hosts[h].maintenance:
            continue
        free0 = list(state.free[h])
        dems = [prob.items[i].demand for i in rest]
        best = {"slack": None, "set": []}
        nodes = [0]
        scale = [1.0 / tot[d] for d in range(ND)]

        def dfs(start, free, chosen):
            nodes[0] += 1
            slack = sum(free[d] * scale[d] for d in range(ND))
            if best["slack"] is None or slack < best["slack"] - 1e-12:
                best["slack"], best["set"] = slack, list(chosen)
            if slack <= 1e-12 or nodes[0] > node_limit:
                return
            last = None
            for j in range(start, len(rest)):
                nodes[0] += 1
                dem = dems[j]
                if dem == last:
                    continue              # same size as a sibling already tried
                if dem[0] <= free[0] and dem[1] <= free[1] and dem[2] <= free[2]:
                    last = dem
                    chosen.append(j)
                    dfs(j + 1, [free[d] - dem[d] for d in range(ND)], chosen)
                    chosen.pop()
                    if best["slack"] <= 1e-12 or nodes[0] > node_limit:
                        return

        if not all(dems[0][d] <= free0[d] for d in range(ND)):
            continue
        # the largest remaining item always goes in (MBS')
        dfs(1, [free0[d] - dems[0][d] for d in range(ND)], [0])
        for j in best["set"]:
            state.put(prob.items[rest[j]], h)
        picked = set(best["set"])
        rest = [i for j, i in enumerate(rest) if j not in picked]
    return rest


def eliminate_hosts(prob, state, max_tries, elig=None):
    """Pack improvement: try to empty the least-loaded hosts into the other used hosts."""
    order = host_order(prob)
    elig = elig or Eligibility(prob, order)
    key = size_key(prob)
    tried = set()
    for dummy in range(max_tries):
        used = [h for h in order if state.on[h] and h not in tried
                and not (state.on[h] & state.fixed)]
        if len(used) < 2:
            return
        used.sort(key=lambda h: (sum(1 - state.free[h][d] / (prob.hosts[h].capacity[d] or 1)
                                     for d in range(ND)), h))
        h = used[0]
        tried.add(h)
        trial = state.copy()
        moving = sorted(trial.on[h], key=lambda i: (-key[i], i))
        for i in moving:
            trial.remove(prob.items[i])
        ok = True
        for i in moving:
            it = prob.items[i]
            best, best_slack = None, None
            for g in elig.hosts(it):
                if g == h or not trial.on[g] or not trial.can(it, g):
                    continue
                slack = sum((trial.free[g][d] - it.demand[d]) / (prob.hosts[g].capacity[d] or 1)
                            for d in range(ND))
                if best is None or slack < best_slack:
                    best, best_slack = g, slack
            if best is None:
                ok = False
                break
            trial.put(it, best)
        if ok:
            state.__dict__.update(trial.__dict__)
            tried.clear()


def rebalance(prob, state, max_tries, elig=None):
    """Spread improvement: move movable items off the most loaded host while the max drops."""
    order = host_order(prob)
    elig = elig or Eligibility(prob, order)
    for dummy in range(max_tries):
        loads = sorted(((load(state, h), h) for h in order
                        if not prob.hosts[h].maintenance or state.on[h]), reverse=True)
        if not loads:
            return
        top, h = loads[0]
        improved = False
        for i in sorted(state.on[h] - state.fixed):
            it = prob.items[i]
            best = None
            state.remove(it)
            for g in elig.hosts(it):
                if g == h or not state.can(it, g):
                    continue
                state.put(it, g)
                lg = load(state, g)
                state.remove(it)
                if lg < top - 1e-9 and (best is None or (lg, g) < best):
                    best = (lg, g)
            state.put(it, h if best is None else best[1])
            if best is not None:
                improved = True
                break
        if not improved:
            return


# ---------------------------------------------------------------- n+1

def evacuate(prob, state, failed_host):
    """Re-place the VMs of ``failed_host`` on the other hosts (best fit decreasing).

    Returns (plan {item: host}, unplaced [(item, reason)]). Pinned items are not evacuated."""
    key = size_key(prob)
    victims = sorted((i for i in state.on[failed_host] if prob.items[i].pin is None),
                     key=lambda i: (-key[i], i))
    plan, unplaced = {}, []
    if not victims:
        return plan, unplaced
    trial = state.copy()
    for i in victims:
        trial.remove(prob.items[i])
    for i in victims:
        it = prob.items[i]
        best, best_slack = None, None
        for g in range(len(prob.hosts)):
            if g == failed_host or static_reason(prob, it, g, evacuation=True):
                continue
            if not trial.can(it, g):
                continue
            slack = sum((trial.free[g][d] - it.demand[d]) / (prob.hosts[g].capacity[d] or 1)
                        for d in range(ND))
            if best is None or slack < best_slack:
                best, best_slack = g, slack
        if best is None:
            unplaced.append((i, diagnose(prob, trial, it, exclude={failed_host}, evacuation=True)))
            continue
        trial.put(it, best)
        plan[i] = best
    return plan, unplaced


def check_reserve(prob, state):
    """Return (failover {host: {item: host}}, failures [(host, item, reason)])."""
    failover, failures = {}, []
    for h in range(len(prob.hosts)):
        if not state.on[h]:
            continue
        plan, unplaced = evacuate(prob, state, h)
        failover[h] = plan
        failures.extend((h, i, r) for i, r in unplaced)
    return failover, failures


def repair_reserve(prob, state, max_tries, allow_fixed=False):
    """Move items off hosts whose loss cannot be absorbed; return the moved item indices."""
    moved = []
    elig = Eligibility(prob, host_order(prob))
    for dummy in range(max_tries):
        dummy, failures = check_reserve(prob, state)
        if not failures:
            return moved, True
        h = failures[0][0]
        # move a VM off the host that cannot be absorbed, or an anti-affinity peer in the way
        groups = {g for i in state.on[h] for g, dummy in prob.items[i].anti_affinity}
        pool = set(state.on[h]) | {it.index for it in prob.items
                                   if groups & {g for g, dummy in it.anti_affinity}}
        candidates = sorted(i for i in pool
                            if prob.items[i].pin is None and (allow_fixed or i not in state.fixed))
        thorough = len(prob.items) * len(prob.hosts) <= 4000
        best = None
        for i in candidates:
            it = prob.items[i]
            src = state.host_of[i]
            state.remove(it)
            for g in elig.hosts(it):
                if g == src or not state.can(it, g):
                    continue
                state.put(it, g)
                score = (len(check_reserve(prob, state)[1]) if thorough else 0, load(state, g), i, g)
                state.remove(it)
                if best is None or score < best:
                    best = score
            state.put(it, src)
        if best is None:
            return moved, False
        it = prob.items[best[2]]
        state.remove(it)
        state.put(it, best[3])
        state.fixed.discard(best[2])
        moved.append(best[2])
    dummy, failures = check_reserve(prob, state)
    return moved, not failures


# ---------------------------------------------------------------- diagnosis

def _names(prob, hosts):
    return ", ".join(prob.hosts[h].name for h in hosts)


def diagnose(prob, state, item, exclude=(), evacuation=False):
    """The binding reason why ``item`` finds no host in ``state`` (one sentence)."""
    hosts = [h for h in range(len(prob.hosts)) if h not in exclude]
    static = {h: static_reason(prob, item, h, evacuation) for h in hosts}
    open_hosts = [h for h in hosts if static[h] is None]
    if not open_hosts:
        if item.pin is not None:
            return "pinned to host %s, which %s" % (prob.hosts[item.pin].name,
                                                    static.get(item.pin) or "has failed")
        if not hosts:
            return "no hosts given"
        kinds = {}
        for h in hosts:
            kinds.setdefault(static[h], []).append(h)
        return "no host can take it: " + "; ".join(
            "%s%s %s" % (_names(prob, hs), ":" if len(hs) > 1 else "", r)
            for r, hs in sorted(kinds.items()))
    blocked, free_hosts = {}, []
    for h in open_hosts:
        others = state.conflicts(item, h)
        if others:
            for o in others:
                blocked.setdefault(o, []).append(h)
        else:
            free_hosts.append(h)
    prefix = ""
    if blocked:
        prefix = "anti-affinity with %s " % ", ".join(
            "%s (on %s)" % (prob.items[o].name, prob.hosts[state.host_of[o]].name)
            if state.host_of[o] is not None else prob.items[o].name
            for o in sorted(blocked, key=lambda o: prob.items[o].name))
    if not free_hosts:
        kinds = {}
        for h in hosts:
            if static[h] is not None:
                kinds.setdefault(static[h], []).append(h)
        rest = "; ".join("%s%s %s" % (_names(prob, hs), ":" if len(hs) > 1 else "", r)
                         for r, hs in sorted(kinds.items()))
        return (prefix or "constraints ") + "leaves no host" + (" (%s)" % rest if rest else "")

    def lack(h):
        out = []
        for d in range(ND):
            short = item.demand[d] - state.free[h][d]
            if short > 0:
                out.append((short / (item.demand[d] or 1), "%s %s" % (
                    fmt_amount(DIMS[d], short), DIM_LABEL[DIMS[d]])))
        out.sort(reverse=True)
        return " and ".join(t for dummy, t in out) or "nothing"
    if len(free_hosts) == 1:
        return "%sleaves only host %s, which lacks %s" % (
            prefix, prob.hosts[free_hosts[0]].name, lack(free_hosts[0]))
    shown = free_hosts[:3]
    more = "" if len(free_hosts) <= 3 else " (and %d more)" % (len(free_hosts) - 3)
    return "%sno host has room: %s%s" % (
        (prefix + "leaves hosts %s; " % _names(prob, free_hosts[:6])) if prefix else "",
        "; ".join("%s lacks %s" % (prob.hosts[h].name, lack(h)) for h in shown), more)
