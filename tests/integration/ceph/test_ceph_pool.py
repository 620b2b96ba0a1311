"""ceph_pool against the real test-bed cluster: convergence, drift, erasure coding, pg_num, delete."""

from __future__ import annotations

import uuid

import pytest

from conftest import delete_pool, pool_detail

pytestmark = [pytest.mark.ceph, pytest.mark.timeout(600)]

BASE = {"size": 3, "min_size": 2, "pg_num": 8, "pgp_num": 8, "pg_autoscale_mode": "off",
        "target_size_ratio": 0.0, "application": ["rbd"], "crush_rule": "replicated_rule",
        "max_bytes": 0, "max_objects": 0, "compression_mode": "none"}


def test_four_step_check_apply_check_apply(ceph_module, ceph_cluster, mon, pool_name):
    """check (changed) -> apply (changed, same commands) -> check (not changed) -> apply (not changed)."""
    args = {"name": pool_name, "size": 2, "min_size": 1, "allow_min_size_one": True, "pg_num": 16,
            "pg_autoscale_mode": "off",
            "application": ["rbd", "rados"], "max_bytes": 10 << 20, "max_objects": 1000,
            "compression_mode": "passive", "target_size_ratio": 0.05}
    pre = ceph_module("ceph_pool", dict(args, name=pool_name), check=True, diff=True)
    assert pre["changed"] is True and not pre.get("failed"), pre
    assert pool_detail(mon, pool_name) is None, "check mode created the pool"
    assert pre["diff"]["before"] == {"state": "absent"}
    applied = ceph_module("ceph_pool", args, diff=True)
    assert applied["changed"] is True, applied
    assert applied["calls"] == pre["calls"]
    assert applied["calls"][0]["prefix"] == "osd pool create"
    post = ceph_module("ceph_pool", args, check=True)
    assert post["changed"] is False and post["calls"] == [], post
    again = ceph_module("ceph_pool", args)
    assert again["changed"] is False and again["calls"] == [], again
    p = pool_detail(mon, pool_name)
    assert (p["size"], p["min_size"], p["pg_num_target"], p["pg_autoscale_mode"]) == (2, 1, 16, "off")
    assert sorted(p["application_metadata"]) == ["rados", "rbd"]
    assert (p["quota_max_bytes"], p["quota_max_objects"]) == (10 << 20, 1000)
    assert p["options"]["compression_mode"] == "passive"
    assert abs(p["options"]["target_size_ratio"] - 0.05) < 1e-9
    for key, val in args.items():
        if key not in ("name", "allow_min_size_one"):
            assert again["pool"][key] == (sorted(val) if isinstance(val, list) else val), key


@pytest.fixture(scope="module")
def drift_pool(run_module, ceph_cluster):
    name = "hc-t-drift-%s" % uuid.uuid4().hex[:6]
    conn = {"conf": ceph_cluster.conf, "keyring": ceph_cluster.keyring}
    ceph_cluster.cli("osd", "crush", "rule", "create-replicated", "hc-t-rule", "default", "osd")
    res = run_module("hospital.cloud.ceph_pool", dict(conn, name=name, **BASE))
    assert res["changed"] and not res.get("failed"), res
    yield name
    run_module("hospital.cloud.ceph_pool", dict(conn, name=name, state="absent", allow_delete=True))
    ceph_cluster.cli("osd", "crush", "rule", "rm", "hc-t-rule")


DRIFTS = [
    ("size", ["osd", "pool", "set", "{p}", "size", "2"], ["size", "min_size"]),
    ("min_size", ["osd", "pool", "set", "{p}", "min_size", "1"], ["min_size"]),
    ("pg_num", ["osd", "pool", "set", "{p}", "pg_num", "16"], ["pg_num"]),
    ("pgp_num", ["osd", "pool", "set", "{p}", "pgp_num", "4"], ["pgp_num"]),
    ("pg_autoscale_mode", ["osd", "pool", "set", "{p}", "pg_autoscale_mode", "warn"], ["pg_autoscale_mode"]),
    ("target_size_ratio", ["osd", "pool", "set", "{p}", "target_size_ratio", "0.3"], ["target_size_ratio"]),
    ("compression_mode", ["osd", "pool", "set", "{p}", "compression_mode", "force"], ["compression_mode"]),
    ("crush_rule", ["osd", "pool", "set", "{p}", "crush_rule", "hc-t-rule"], ["crush_rule"]),
    ("max_bytes", ["osd", "pool", "set-quota", "{p}", "max_bytes", "1048576"], ["max_bytes"]),
    ("max_objects", ["osd", "pool", "set-quota", "{p}", "max_objects", "99"], ["max_objects"]),
    ("extra application", ["osd", "pool", "application", "enable", "{p}", "rgw", "--yes-i-really-mean-it"],
     ["disable rgw"]),
    ("missing application", ["osd", "pool", "application", "disable", "{p}", "rbd", "--yes-i-really-mean-it"],
     ["enable rbd"]),
]


def _what(cmd):
    if cmd["prefix"] == "osd pool set":
        return cmd["var"]
    if cmd["prefix"] == "osd pool set-quota":
        return cmd["field"]
    return "%s %s" % (cmd["prefix"].rsplit(" ", 1)[1], cmd["app"])


@pytest.mark.parametrize("label,cli,expected", DRIFTS, ids=[d[0] for d in DRIFTS])
def test_drift_behind_the_modules_back_is_corrected(ceph_module, ceph_cluster, mon, drift_pool, label, cli, expected):
    """A setting changed by hand with the ceph CLI is put back, with only the commands needed."""
    ceph_cluster.cli(*[a.format(p=drift_pool) for a in cli])
    check = ceph_module("ceph_pool", dict(BASE, name=drift_pool), check=True)
    assert check["changed"] is True, (label, check)
    res = ceph_module("ceph_pool", dict(BASE, name=drift_pool), diff=True)
    assert res["changed"] is True and not res.get("failed"), res
    assert [_what(c) for c in res["calls"]] == expected
    assert res["calls"] == check["calls"]
    assert res["diff"]["before"] != res["diff"]["after"]
    again = ceph_module("ceph_pool", dict(BASE, name=drift_pool))
    assert again["changed"] is False and again["calls"] == [], again
    p = pool_detail(mon, drift_pool)
    assert (p["size"], p["min_size"], p["pg_num_target"], p["pg_placement_num_target"]) == (3, 2, 8, 8)
    assert p["pg_autoscale_mode"] == "off" and list(p["application_metadata"]) == ["rbd"]
    assert p["quota_max_bytes"] == 0 and p["quota_max_objects"] == 0 and p["crush_rule"] == 0


def test_erasure_coded_pool(ceph_module, ceph_cluster, mon, pool_name):
    """k=2 m=1 on 3 OSDs of one host: created, idempotent, and its type cannot be flipped."""
    profile = "hc-t-k2m1"
    ceph_cluster.cli("osd", "erasure-code-profile", "set", profile, "k=2", "m=1", "crush-failure-domain=osd")
    try:
        args = {"name": pool_name, "pool_type": "erasure", "erasure_profile": profile, "pg_num": 8,
                "pg_autoscale_mode": "off", "application": ["rados"], "max_objects": 500}
        first = ceph_module("ceph_pool", args)
        assert first["changed"] is True and not first.get("failed"), first
        assert first["calls"][0]["erasure_code_profile"] == profile
        second = ceph_module("ceph_pool", args)
        assert second["changed"] is False, second
        assert second["pool"]["pool_type"] == "erasure" and second["pool"]["size"] == 3
        p = pool_detail(mon, pool_name)
        assert p["type"] == 3 and p["erasure_code_profile"] == profile
        flipped = ceph_module("ceph_pool", {"name": pool_name, "pool_type": "replicated"})
        assert flipped["failed"] and "cannot be changed" in flipped["msg"]
        resized = ceph_module("ceph_pool", {"name": pool_name, "size": 2})
        assert resized["failed"] and "erasure" in resized["msg"]
    finally:
        delete_pool(ceph_module, pool_name)
        ceph_cluster.cli("osd", "crush", "rule", "rm", pool_name, check=False)
        ceph_cluster.cli("osd", "erasure-code-profile", "rm", profile)


def test_pg_num_with_autoscaler_on_is_a_warning_not_silently_dropped(ceph_module, ceph_cluster, mon, pool_name):
    """autoscale on: pg_num is the initial value (warned); a later change is warned, not applied;
    switching the autoscaler off in the same task applies it."""
    first = ceph_module("ceph_pool", {"name": pool_name, "pg_num": 8, "pg_autoscale_mode": "on",
                                      "application": ["rbd"]})
    assert first["changed"] and any("initial value" in w for w in _warnings(first)), first
    res = ceph_module("ceph_pool", {"name": pool_name, "pg_num": 16, "pg_autoscale_mode": "on"})
    assert res["changed"] is False and res["calls"] == [], res
    assert any("pg_num=16 not applied" in w for w in _warnings(res)), res
    assert pool_detail(mon, pool_name)["pg_num_target"] != 16
    off = ceph_module("ceph_pool", {"name": pool_name, "pg_num": 16, "pg_autoscale_mode": "off"})
    assert [(c["var"], c["val"]) for c in off["calls"]] == [("pg_autoscale_mode", "off"), ("pg_num", "16")]
    assert not _warnings(off)
    p = pool_detail(mon, pool_name)
    assert (p["pg_num_target"], p["pg_placement_num_target"], p["pg_autoscale_mode"]) == (16, 16, "off")
    again = ceph_module("ceph_pool", {"name": pool_name, "pg_num": 16, "pg_autoscale_mode": "off"})
    assert again["changed"] is False


def _warnings(res):
    out = []
    for w in res.get("warnings", []):
        out.append(w["event"]["msg"] if isinstance(w, dict) else str(w))
    return out


def test_size_one_needs_its_opt_in(ceph_module, ceph_cluster, mon, pool_name):
    assert ceph_module("ceph_pool", {"name": pool_name, "size": 2, "pg_num": 8, "pg_autoscale_mode": "off",
                                     "application": ["rados"]})["changed"]
    refused = ceph_module("ceph_pool", {"name": pool_name, "size": 1})
    assert refused["failed"] and "allow_size_one" in refused["msg"]
    assert pool_detail(mon, pool_name)["size"] == 2
    res = ceph_module("ceph_pool", {"name": pool_name, "size": 1, "min_size": 1, "allow_size_one": True})
    assert res["changed"] and res["calls"][0].get("yes_i_really_mean_it") is True, res
    assert pool_detail(mon, pool_name)["size"] == 1


def test_delete_needs_opt_in_and_restores_mon_allow_pool_delete(ceph_module, ceph_cluster, mon, pool_name):
    ceph_module("ceph_pool", {"name": pool_name, "pg_num": 8, "pg_autoscale_mode": "off", "application": ["rados"]})
    refused = ceph_module("ceph_pool", {"name": pool_name, "state": "absent"})
    assert refused["failed"] and "allow_delete" in refused["msg"] and refused["calls"] == []
    assert pool_detail(mon, pool_name) is not None
    check = ceph_module("ceph_pool", {"name": pool_name, "state": "absent", "allow_delete": True}, check=True)
    assert check["changed"] and pool_detail(mon, pool_name) is not None
    res = ceph_module("ceph_pool", {"name": pool_name, "state": "absent", "allow_delete": True})
    assert res["changed"] and res["calls"] == check["calls"], res
    assert [c["prefix"] for c in res["calls"]] == ["config set", "osd pool delete", "config rm"]
    assert pool_detail(mon, pool_name) is None
    assert mon("config get", who="mon", key="mon_allow_pool_delete") in (False, "false")
    assert not [e for e in mon("config dump") if e["name"] == "mon_allow_pool_delete"]
    gone = ceph_module("ceph_pool", {"name": pool_name, "state": "absent", "allow_delete": True})
    assert gone["changed"] is False and gone["calls"] == []
