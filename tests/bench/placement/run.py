"""Placement benchmark: our solver vs first-fit decreasing, a Nova-style greedy and lower bounds.

Not gating CI. Every figure is measured in this run. Usage:
    .venv/bin/python tests/bench/placement/run.py [--quick] [--time-limit S]
(with the collection on PYTHONPATH, e.g. via tests/testbed/pytest.sh's environment or
 PYTHONPATH=.cache/collections).

Instance recipes (generated here, seeded; not the original files):
- Falkenauer uniform uN: N integer sizes U[20,100], capacity 150.
- Falkenauer triplets tN: capacity 1000; per triplet a=U[380,490], b=U[250,(1000-a)/2],
  c=1000-a-b, so the optimum is exactly N/3 (every bin full).
- 2-D / 3-D vector packing in the style of Caprara-Toth / Panigrahy et al.: capacity 1000 per
  dimension; 'uncorr' sizes U[100,400] per dimension; 'poscorr' d2 = d1 +- U[0,50];
  'negcorr' d2 = 500 - d1 +- U[0,50] (clipped to [10,490]).
- VM-like: a flavour mix (small..pacs-db) on 64 vCPU (cpu overcommit 2) / 256 GiB / 4 TiB hosts.
"""

import argparse
import os
import random
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(REPO, ".cache", "collections"))

# pylint: disable=wrong-import-position
from ansible_collections.hospital.cloud.plugins.plugin_utils.placement import bounds  # noqa: E402
from ansible_collections.hospital.cloud.plugins.plugin_utils.placement.solver import placement  # noqa: E402

FLAVOURS = [  # name, vcpus, memory MiB, disk GiB, weight
    ("small", 1, 2048, 20, 30), ("medium", 2, 4096, 40, 30), ("large", 4, 8192, 80, 20),
    ("xlarge", 8, 16384, 160, 10), ("mem", 4, 32768, 100, 5), ("pacs-db", 16, 65536, 500, 3),
    ("imaging", 8, 24576, 200, 2)]


def uniform(n, seed):
    r = random.Random(seed)
    return [(r.randint(20, 100),) for dummy in range(n)], (150,)


def triplets(n, seed):
    r = random.Random(seed)
    items = []
    for dummy in range(n // 3):
        a = r.randint(380, 490)
        b = r.randint(250, (1000 - a) // 2)
        items += [(a,), (b,), (1000 - a - b,)]
    r.shuffle(items)
    return items, (1000,)


def vector(n, seed, kind, dims=2):
    r = random.Random(seed)
    items = []
    for dummy in range(n):
        d1 = r.randint(100, 400)
        if kind == "uncorr":
            rest = [r.randint(100, 400) for dummy in range(dims - 1)]
        elif kind == "poscorr":
            rest = [min(490, max(10, d1 + r.randint(-50, 50))) for dummy in range(dims - 1)]
        else:
            rest = [min(490, max(10, 500 - d1 + r.randint(-50, 50))) for dummy in range(dims - 1)]
        items.append(tuple([d1] + rest))
    return items, tuple([1000] * dims)


def vmlike(n, seed):
    r = random.Random(seed)
    weights = [f[4] for f in FLAVOURS]
    items = []
    for dummy in range(n):
        f = r.choices(FLAVOURS, weights)[0]
        items.append((f[1], f[2], f[3]))
    return items, (128, 262144, 4096)      # 64 vCPU x 2.0 overcommit


def pad(t):
    return tuple(t) + (0,) * (3 - len(t))


def ffd(items, cap):
    """First-fit decreasing on the sum of normalised sizes; returns bins used."""
    cap = pad(cap)
    order = sorted(range(len(items)), key=lambda i: (-sum(pad(items[i])[d] / (cap[d] or 1)
                                                          for d in range(3)), i))
    free = []
    for i in order:
        it = pad(items[i])
        for f in free:
            if all(f[d] >= it[d] for d in range(3)):
                for d in range(3):
                    f[d] -= it[d]
                break
        else:
            free.append([cap[d] - it[d] for d in range(3)])
    return len(free)


def nova(items, cap, nhosts):
    """Nova-style: one VM at a time in arrival order; filter hosts that fit, weigh (stacking:
    least free of the last dimension that matters, i.e. RAM for VMs), first host on ties."""
    cap = pad(cap)
    free = [list(cap) for dummy in range(nhosts)]
    key_dim = max(d for d in range(3) if cap[d])
    key_dim = 1 if cap[1] else key_dim
    for it in items:
        it = pad(it)
        best = None
        for h, f in enumerate(free):
            if all(f[d] >= it[d] for d in range(3)):
                w = (f[key_dim], h)
                if best is None or w < best:
                    best = w
        if best is None:
            return None
        h = best[1]
        for d in range(3):
            free[h][d] -= it[d]
    return sum(1 for f in free if f != list(cap))


def lower(items, cap):
    best = 0
    for d in range(len(cap)):
        sizes = [it[d] for it in items]
        best = max(best, bounds.l1(sizes, [cap[d]] * len(items)), bounds.l2(sizes, cap[d]))
    return best


def run_ours(items, cap, nhosts, time_limit, vmlike_hosts=False):
    cap3 = pad(cap)
    hosts = []
    for h in range(nhosts):
        if vmlike_hosts:
            hosts.append({"name": "h%05d" % h, "vcpus": 64, "memory": cap3[1], "disk": cap3[2],
                          "overcommit": {"cpu": 2.0}})
        else:
            hosts.append({"name": "h%05d" % h, "vcpus": cap3[0], "memory": cap3[1], "disk": cap3[2]})
    vms = [{"name": "v%05d" % i, "vcpus": it[0], "memory": pad(it)[1], "disk": pad(it)[2]}
           for i, it in enumerate(items)]
    t0 = time.perf_counter()
    res = placement(vms, hosts, time_limit=time_limit)
    dt = time.perf_counter() - t0
    viol = 0
    for hname, u in res["hosts"].items():
        for dim in ("vcpus", "memory", "disk"):
            if u[dim]["used"] > u[dim]["capacity"]:
                viol += 1
    if len(res["assignment"]) != len(vms):
        viol += 1
    return res["summary"]["hosts_used"], dt, viol, res["summary"]["solver"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer seeds, skip the 10,000-VM case")
    ap.add_argument("--time-limit", type=float, default=2.0)
    args = ap.parse_args()
    seeds = 2 if args.quick else 5
    classes = [("u120", lambda s: uniform(120, s), seeds), ("u250", lambda s: uniform(250, s), seeds),
               ("u500", lambda s: uniform(500, s), max(1, seeds // 2)),
               ("t60", lambda s: triplets(60, s), seeds), ("t120", lambda s: triplets(120, s), seeds),
               ("t249", lambda s: triplets(249, s), max(1, seeds // 2)),
               ("2d-uncorr-200", lambda s: vector(200, s, "uncorr"), seeds),
               ("2d-poscorr-200", lambda s: vector(200, s, "poscorr"), seeds),
               ("2d-negcorr-200", lambda s: vector(200, s, "negcorr"), seeds),
               ("3d-uncorr-200", lambda s: vector(200, s, "uncorr", 3), seeds),
               ("vm-flavours-1000", lambda s: vmlike(1000, s), seeds)]
    header = "%-17s %5s %3s | %7s %7s %7s %7s | %6s %6s | %7s %7s | %s" % (
        "class", "n", "k", "ours", "FFD", "Nova", "LB", "gap%", "vsFFD", "t_ours", "t_max", "viol")
    print(header)
    print("-" * len(header))
    all_gaps, worse_than_ffd, total_viol = [], 0, 0
    for name, gen, count in classes:
        sums = {"ours": 0, "ffd": 0, "nova": 0, "lb": 0, "t": 0.0, "tmax": 0.0, "viol": 0}
        gaps = []
        for seed in range(count):
            items, cap = gen(seed)
            f = ffd(items, cap)
            nhosts = f + 3
            vml = name.startswith("vm-")
            lb = lower(items, cap)
            n_nova = nova(items, cap, 2 * nhosts + 5)
            ours, dt, viol, dummy = run_ours(items, cap, nhosts, args.time_limit, vml)
            sums["ours"] += ours
            sums["ffd"] += f
            sums["nova"] += n_nova or 0
            sums["lb"] += lb
            sums["t"] += dt
            sums["tmax"] = max(sums["tmax"], dt)
            sums["viol"] += viol
            gaps.append(100.0 * (ours - lb) / lb)
            worse_than_ffd += ours > f
        n = len(gen(0)[0])
        all_gaps += gaps
        total_viol += sums["viol"]
        print("%-17s %5d %3d | %7.2f %7.2f %7.2f %7.2f | %6.2f %6.3f | %6.2fs %6.2fs | %d" % (
            name, n, count, sums["ours"] / count, sums["ffd"] / count, sums["nova"] / count,
            sums["lb"] / count, sum(gaps) / len(gaps), sums["ours"] / sums["ffd"],
            sums["t"] / count, sums["tmax"], sums["viol"]))
        sys.stdout.flush()
    print()
    print("mean gap to lower bound over %d instances: %.3f %% (target <= 0.3 %%)"
          % (len(all_gaps), sum(all_gaps) / len(all_gaps)))
    print("instances worse than FFD: %d (target 0); constraint violations: %d (target 0)"
          % (worse_than_ffd, total_viol))
    # speed targets (VM-like, our full pipeline incl. validation and result building)
    cases = [(1000, 200, 1.0)] + ([] if args.quick else [(10000, 2000, 10.0)])
    for n, m, target in cases:
        items, cap = vmlike(n, 42)
        used, dt, viol, solver = run_ours(items, cap, m, args.time_limit, True)
        print("speed: %d VMs x %d hosts: %.2f s (target < %.0f s) hosts used %d, LB %d, FFD %d, "
              "solver %s, violations %d" % (
                  n, m, dt, target, used, lower(items, cap), ffd(items, cap), solver, viol))
    return 0


if __name__ == "__main__":
    sys.exit(main())
