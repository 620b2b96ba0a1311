"""Pattern model (exact plain packing on identical hosts): triplets, backends, scope, stdout."""

import json
import os
import random
import subprocess
import sys
import textwrap

import pytest

from ansible_collections.hospital.cloud.plugins.plugin_utils.placement import exact, patterns
from ansible_collections.hospital.cloud.plugins.plugin_utils.placement.model import build_problem
from ansible_collections.hospital.cloud.plugins.plugin_utils.placement.solver import placement

from placement_check import violations


def triplets(n, seed, spare=6):
    """Falkenauer-style: every host exactly full with three VMs (optimum n/3)."""
    r = random.Random(seed)
    sizes = []
    for dummy in range(n // 3):
        a = r.randint(380, 490)
        b = r.randint(250, (1000 - a) // 2)
        sizes += [a, b, 1000 - a - b]
    r.shuffle(sizes)
    vms = [dict(name="v%03d" % i, vcpus=s, memory=1, disk=1) for i, s in enumerate(sizes)]
    hosts = [dict(name="h%03d" % h, vcpus=1000, memory=1000, disk=1000) for h in range(n // 3 + spare)]
    return vms, hosts


@pytest.mark.parametrize("n,seed,spare", [(60, 1, 6), (120, 3, 6), (60, 2, 0)])
def test_triplets_reach_the_optimum(n, seed, spare):
    # 120/3 on 46 hosts and 60/2 on 20: first-fit decreasing runs out of hosts
    vms, hosts = triplets(n, seed, spare)
    res = placement(vms, hosts)
    assert not violations(vms, hosts, res)
    assert res["summary"]["hosts_used"] == res["summary"]["lower_bound"] == n // 3
    assert res["summary"]["solver"] in ("highs", "cp-sat")
    assert res["summary"]["status"] == "optimal"
    assert placement(vms, hosts) == res                 # deterministic


@pytest.mark.parametrize("backend", ["highs", "cp-sat"])
def test_backends_give_valid_packings(backend):
    if backend == "highs" and not patterns.HAS_HIGHS:
        pytest.skip("highspy is not installed on this controller")
    if backend == "cp-sat" and not exact.HAS_ORTOOLS:
        pytest.skip("ortools is not installed on this controller")
    vms, hosts = triplets(60, 4)
    prob = build_problem(vms, hosts)
    used, status, state = patterns.solve(prob, 20, 2.0, backend=backend)
    assert (used, status) == (backend, "OPTIMAL")
    assert state.used_hosts() == 20 and None not in state.host_of
    assert all(min(free) >= 0 for free in state.free)


def test_too_loose_budget_or_impossible_target():
    vms, hosts = triplets(60, 0)
    prob = build_problem(vms, hosts)
    # one host fewer than the bound: negative waste budget, no pattern at all
    assert patterns.solve(prob, 19, 2.0)[1:] == ("INFEASIBLE", None)
    # many spare hosts: the budget admits too many patterns, the model is not built
    assert patterns.solve(prob, 26, 2.0)[1:] == ("too many patterns", None)
    assert patterns.enumerate_patterns([(3,), (2,)], [1, 1], (5,), (0,)) == [[(0, 1), (1, 1)]]
    assert patterns.enumerate_patterns([(3,), (2,)], [1, 1], (5,), (-1,)) == []


@pytest.mark.parametrize("change", [
    lambda vms, hosts: vms[0].update(pin="h001"),
    lambda vms, hosts: vms[0].update(requires=["ssd"]) or hosts[0].update(labels=["ssd"]),
    lambda vms, hosts: [v.update(anti_affinity="g") for v in vms[:2]],
    lambda vms, hosts: hosts[0].update(vcpus=999),
    lambda vms, hosts: hosts[0].update(maintenance=True),
])
def test_only_used_where_exact(change):
    vms, hosts = triplets(30, 2)
    change(vms, hosts)
    assert not patterns.applicable(build_problem(vms, hosts))
    res = placement(vms, hosts, time_limit=0.5)
    assert not violations(vms, hosts, res)
    assert res["summary"]["solver"] != "highs"


def test_running_vms_are_not_repacked():
    vms, hosts = triplets(30, 2)
    assert not patterns.applicable(build_problem(vms, hosts, current={"v000": "h005"}))


def test_highs_prints_nothing_and_cp_sat_takes_over_without_it():
    code = textwrap.dedent("""
        import json, sys
        if sys.argv[1] == "without":
            sys.modules["highspy"] = None          # as if the package were not installed
        sys.path.insert(0, sys.argv[2])
        from test_patterns import triplets
        from ansible_collections.hospital.cloud.plugins.plugin_utils.placement.solver import placement
        vms, hosts = triplets(60, 1)
        print(json.dumps(placement(vms, hosts)["summary"]))
    """)
    here = os.path.dirname(os.path.abspath(__file__))
    for mode, backend in (("with", "highs" if patterns.HAS_HIGHS else "cp-sat"), ("without", "cp-sat")):
        out = subprocess.run([sys.executable, "-c", code, mode, here], capture_output=True, text=True,
                             check=True, env=dict(os.environ))
        summary = json.loads(out.stdout)        # stdout is the JSON and nothing else
        assert summary["solver"] == backend and summary["hosts_used"] == 20
