# -*- coding: utf-8 -*-
# Copyright: hospital.cloud maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Lower bounds on the number of hosts a set of items needs.

- ``l1``: per-dimension ceil bound, ceil(sum of demand / capacity); with hosts of different
  sizes, the fewest of the largest hosts whose capacities add up to the demand.
- ``l2``: Martello and Toth's L2 bound (1990) for one dimension and equal capacities.
- ``lower_bound``: the best of both over all dimensions (and anti-affinity group sizes).
"""

from __future__ import annotations

import bisect


def l1(sizes, capacities):
    """Fewest hosts (largest first) whose capacity covers sum(sizes)."""
    need = sum(sizes)
    if need <= 0:
        return 0
    total, count = 0, 0
    for cap in sorted(capacities, reverse=True):
        total += cap
        count += 1
        if total >= need:
            return count
    return count + 1        # does not fit at all: more hosts than exist


def l2(sizes, capacity):
    """Martello-Toth L2 for one dimension, all bins of ``capacity``."""
    if capacity <= 0 or not sizes:
        return 0
    s = sorted(sizes)
    n = len(s)
    prefix = [0]
    for v in s:
        prefix.append(prefix[-1] + v)

    def count_sum(lo_excl, hi_incl):
        """Number and sum of sizes with lo_excl < size <= hi_incl."""
        a = bisect.bisect_right(s, lo_excl)
        b = bisect.bisect_right(s, hi_incl)
        return b - a, prefix[b] - prefix[a]

    half = capacity / 2.0
    best = 0
    ks = sorted({v for v in s if v <= half} | {0})
    for k in ks:
        n1, dummy = count_sum(capacity - k, float("inf"))
        n2, s2 = count_sum(half, capacity - k)
        # J3: k <= size <= C/2
        a = bisect.bisect_left(s, k)
        b = bisect.bisect_right(s, half)
        s3 = prefix[b] - prefix[a]
        extra = s3 - (n2 * capacity - s2)
        bound = n1 + n2 + max(0, -(-extra // capacity))
        best = max(best, bound)
    del n
    return int(best)


def lower_bound(prob, items=None):
    """Best bound on the hosts needed by ``items`` (default: all) on ``prob``'s hosts."""
    items = prob.items if items is None else items
    hosts = list(prob.hosts)
    best = 0
    for d in range(3):
        sizes = [it.demand[d] for it in items]
        caps = [h.capacity[d] for h in hosts]
        best = max(best, l1(sizes, caps))
        if caps and len(set(caps)) == 1:
            best = max(best, l2(sizes, caps[0]))
    groups = {}
    for it in items:
        for g, scope in it.anti_affinity:
            if scope == "host":
                groups[g] = groups.get(g, 0) + 1
    if groups:
        best = max(best, *groups.values())
    return best
