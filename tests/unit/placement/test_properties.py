"""Property tests: validity, determinism, stability, n+1 by brute force, honest infeasibility."""

import re

from hypothesis import HealthCheck, given, settings, strategies as st

from ansible_collections.hospital.cloud.plugins.plugin_utils.placement.model import PlacementError
from ansible_collections.hospital.cloud.plugins.plugin_utils.placement.solver import placement

from placement_check import brute_force_feasible, survives_loss, violations

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def hosts_st(draw, max_hosts=5):
    n = draw(st.integers(2, max_hosts))
    out = []
    for i in range(n):
        h = {"name": "h%d" % i, "vcpus": draw(st.integers(4, 24)),
             "memory": draw(st.sampled_from([4096, 8192, 16384, 32768])),
             "disk": draw(st.integers(50, 400)), "rack": draw(st.sampled_from(["r1", "r2"])),
             "labels": draw(st.lists(st.sampled_from(["ssd", "gpu"]), unique=True, max_size=2))}
        if draw(st.booleans()):
            h["overcommit"] = {"cpu": draw(st.sampled_from([1, 2, 4])), "ram": 1.0}
        if draw(st.integers(0, 7)) == 0:
            h["maintenance"] = True
        if draw(st.integers(0, 4)) == 0:
            h["reserved"] = {"vcpus": 1, "memory": 1024}
        out.append(h)
    return out


@st.composite
def vms_st(draw, hosts, max_vms=9, min_vms=1):
    n = draw(st.integers(min_vms, max_vms))
    out = []
    for i in range(n):
        v = {"name": "vm%d" % i, "vcpus": draw(st.integers(1, 6)),
             "memory": draw(st.sampled_from([512, 1024, 2048, 4096, 8192])),
             "disk": draw(st.integers(5, 80))}
        kind = draw(st.integers(0, 9))
        if kind == 0:
            v["anti_affinity"] = draw(st.sampled_from(["g1", {"group": "g2", "scope": "rack"}]))
        elif kind == 1:
            v["anti_affinity"] = "g1"
        elif kind == 2:
            v["affinity"] = "a1"
        elif kind == 3:
            v["requires"] = [draw(st.sampled_from(["ssd", "gpu"]))]
        elif kind == 4:
            v["pin"] = draw(st.sampled_from([h["name"] for h in hosts]))
        out.append(v)
    return out


@st.composite
def instance(draw, max_hosts=5, max_vms=9):
    hosts = draw(hosts_st(max_hosts))
    vms = draw(vms_st(hosts, max_vms))
    current = {}
    for v in vms:
        if draw(st.integers(0, 2)) == 0:
            current[v["name"]] = draw(st.sampled_from([h["name"] for h in hosts]))
    strategy = draw(st.sampled_from(["pack", "spread"]))
    return vms, hosts, current, strategy


def _try(vms, hosts, **kw):
    try:
        return placement(vms, hosts, **kw), None
    except PlacementError as exc:
        return None, exc


@SETTINGS
@given(instance())
def test_every_plan_satisfies_every_constraint_and_is_deterministic(inst):
    vms, hosts, current, strategy = inst
    res, err = _try(vms, hosts, current=current, strategy=strategy)
    again, err2 = _try(vms, hosts, current=current, strategy=strategy)
    assert res == again and str(err) == str(err2)
    if res is None:
        assert err.problems and all(re.match(r"^(vm|reserve|affinity group) \S+", p)
                                    for p in err.problems)
        return
    assert violations(vms, hosts, res, current=current) == []
    for m in res["moves"]:
        assert current.get(m["vm"]) == m["from"] != m["to"] and m["reason"]
    moved = {m["vm"] for m in res["moves"]}
    for name, host in current.items():
        if name not in moved:
            assert res["assignment"][name] == host


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(instance(max_hosts=3, max_vms=5))
def test_infeasible_only_when_brute_force_agrees(inst):
    vms, hosts, current, strategy = inst
    res, err = _try(vms, hosts, current=current, strategy=strategy)
    if res is None:
        assert not brute_force_feasible(vms, hosts, current=current), err
        named = re.findall(r"^vm (\S+):", "\n".join(err.problems), re.M)
        assert named and all(n in {v["name"] for v in vms} for n in named)


@SETTINGS
@given(instance(max_hosts=4, max_vms=7), st.data())
def test_adding_a_vm_moves_nothing_when_it_fits(inst, data):
    vms, hosts, dummy, strategy = inst
    res, dummy = _try(vms, hosts, strategy=strategy)
    if res is None:
        return
    current = dict(res["assignment"])
    new = data.draw(vms_st(hosts, max_vms=1))[0]
    new["name"] = "newcomer"
    # does it fit somewhere without moving anyone?
    fits = any(not violations(vms + [new], hosts, None, current=current,
                              assignment=dict(current, newcomer=h["name"])) for h in hosts)
    res2, err = _try(vms + [new], hosts, current=current, strategy=strategy)
    if fits:
        assert res2 is not None, err
        assert res2["moves"] == []
        assert {k: v for k, v in res2["assignment"].items() if k != "newcomer"} == current


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(instance(max_hosts=4, max_vms=6))
def test_n_plus_1_plans_survive_any_host_loss(inst):
    vms, hosts, current, strategy = inst
    res, err = _try(vms, hosts, current=current, strategy=strategy, reserve="n+1")
    if res is None:
        return
    assert violations(vms, hosts, res, current=current) == []
    for h in hosts:
        assert survives_loss(vms, hosts, res["assignment"], h["name"]), h["name"]
    for failed, plan in res["failover"].items():
        stuck = {v["name"] for v in vms if v.get("pin") == failed}
        trial = {n: h for n, h in dict(res["assignment"], **plan).items() if n not in stuck}
        live = [h for h in hosts if h["name"] != failed]
        assert failed not in plan.values()
        assert violations([v for v in vms if v["name"] not in stuck], live, None,
                          current=res["assignment"], assignment=trial) == []
