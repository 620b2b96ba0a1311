"""Placement scenarios: messages, moves, strategies, reserve, solver fallback."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from ansible_collections.hospital.cloud.plugins.plugin_utils.placement.model import PlacementError
from ansible_collections.hospital.cloud.plugins.plugin_utils.placement.solver import placement

from placement_check import survives_loss, violations


def host(name, rack="r1", vcpus=32, memory="128 GiB", disk=2000, **kw):
    return dict(name=name, rack=rack, vcpus=vcpus, memory=memory, disk=disk, **kw)


def vm(name, vcpus=2, memory=4096, disk=20, **kw):
    return dict(name=name, vcpus=vcpus, memory=memory, disk=disk, **kw)


def test_issue_example_message():
    hosts = [host("r1-h1"), host("r1-h2")]
    vms = [vm("pacs-db-1", memory="64 GiB", anti_affinity="pacs-db"),
           vm("pacs-db-2", memory="64 GiB", anti_affinity="pacs-db"),
           vm("ris", memory="76 GiB", pin="r1-h2")]
    with pytest.raises(PlacementError) as err:
        placement(vms, hosts)
    msg = str(err.value)
    assert "vm pacs-db-2: anti-affinity with pacs-db-1 (on r1-h1) leaves only host r1-h2, " \
        "which lacks 12 GiB RAM" in msg


@pytest.mark.parametrize("vms,hosts,needle", [
    ([vm("g", requires=["gpu"])], [host("h1", labels=["ssd"])], "lacks label(s) gpu"),
    ([vm("p", memory="200 GiB", pin="h1")], [host("h1"), host("h2")], "pinned to host h1"),
    ([vm("m")], [host("h1", maintenance=True)], "in maintenance"),
    ([vm("big", vcpus=64)], [host("h1"), host("h2")], "has only 32 vCPU in total"),
    ([vm("a", anti_affinity={"group": "g", "scope": "rack"}),
      vm("b", anti_affinity={"group": "g", "scope": "rack"})],
     [host("h1"), host("h2")], "vm b: anti-affinity with a (on h1) leaves no host"),
])
def test_infeasible_reasons(vms, hosts, needle):
    with pytest.raises(PlacementError) as err:
        placement(vms, hosts)
    assert needle in str(err.value)


def test_running_vms_stay_and_new_ones_fill():
    hosts = [host("h1"), host("h2"), host("h3")]
    vms = [vm("a"), vm("b"), vm("c")]
    current = {"a": "h3", "b": "h2"}
    res = placement(vms, hosts, current=current)
    assert res["assignment"]["a"] == "h3" and res["assignment"]["b"] == "h2"
    assert res["moves"] == []


def test_moves_have_reasons_and_are_fewest():
    hosts = [host("h1", memory="32 GiB"), host("h2", memory="64 GiB", labels=["ssd"])]
    vms = [vm("small1", memory="8 GiB"), vm("small2", memory="8 GiB"), vm("big", memory="24 GiB"),
           vm("fast", requires=["ssd"])]
    current = [{"name": "small1", "host": "h1"}, {"name": "small2", "host": "h1"},
               {"name": "big", "host": "h1"}, {"name": "fast", "host": "h1"},
               {"name": "ghost", "host": "h1"}]
    res = placement(vms, hosts, current=current)
    assert not violations(vms, hosts, res, current={c["name"]: c["host"] for c in current})
    moved = {m["vm"]: m for m in res["moves"]}
    assert len(moved) == 2 and "fast" in moved     # one for the label, one for capacity
    assert "lacks label(s) ssd" in moved["fast"]["reason"]
    other = [m for n, m in moved.items() if n != "fast"][0]
    assert other["vm"] in ("big", "small1", "small2") and "over capacity" in other["reason"]


def test_unknown_current_host_is_a_move():
    res = placement([vm("a")], [host("h1")], current={"a": "gone"})
    assert res["moves"] == [{"vm": "a", "from": "gone", "to": "h1",
                             "reason": "host gone is not in the host list"}]


def test_maintenance_keeps_running_vms_but_takes_no_new():
    hosts = [host("h1", maintenance=True), host("h2")]
    res = placement([vm("old"), vm("new")], hosts, current={"old": "h1"})
    assert res["assignment"] == {"old": "h1", "new": "h2"}


def test_affinity_group_together_and_split_group_reunited():
    hosts = [host("h1"), host("h2")]
    vms = [vm("web", affinity="pacs"), vm("app", affinity="pacs"), vm("db", affinity="pacs")]
    res = placement(vms, hosts, current={"web": "h2", "app": "h2", "db": "h1"})
    assert set(res["assignment"].values()) == {"h2"}
    assert [m["vm"] for m in res["moves"]] == ["db"]
    assert "affinity group pacs" in res["moves"][0]["reason"]


def test_pack_vs_spread():
    hosts = [host("h%d" % i) for i in range(4)]
    vms = [vm("v%d" % i, vcpus=4, memory="16 GiB") for i in range(8)]
    pack = placement(vms, hosts, strategy="pack")
    spread = placement(vms, hosts, strategy="spread")
    assert pack["summary"]["hosts_used"] == 1
    assert spread["summary"]["hosts_used"] == 4
    assert all(h["vcpus"]["used"] == 8 for h in spread["hosts"].values())


def test_reserve_n_plus_1_leaves_room_for_any_host_loss():
    hosts = [host("h%d" % i, vcpus=16, memory="32 GiB") for i in range(3)]
    vms = [vm("v%d" % i, vcpus=4, memory="8 GiB") for i in range(6)]
    res = placement(vms, hosts, reserve="n+1")
    assert not violations(vms, hosts, res)
    for h in hosts:
        assert survives_loss(vms, hosts, res["assignment"], h["name"])
    assert set(res["failover"]) == {h for h, u in res["hosts"].items() if u["vms"]}
    plain = placement(vms, hosts)
    assert plain["summary"]["hosts_used"] == 2


def test_reserve_impossible_is_explained():
    hosts = [host("h1", vcpus=8), host("h2", vcpus=8)]
    vms = [vm("a", vcpus=6), vm("b", vcpus=6)]
    with pytest.raises(PlacementError, match=r"reserve n\+1: losing host h\d leaves vm \w"):
        placement(vms, hosts, reserve="n+1")


def test_rack_anti_affinity():
    hosts = [host("a1", rack="ra"), host("a2", rack="ra"), host("b1", rack="rb")]
    vms = [vm("db%d" % i, anti_affinity={"group": "db", "scope": "rack"}) for i in range(2)]
    res = placement(vms, hosts)
    racks = {res["hosts"][res["assignment"][n]]["rack"] for n in ("db0", "db1")}
    assert racks == {"ra", "rb"}


def test_utilisation_report():
    res = placement([vm("a", vcpus=8, memory="32 GiB", disk=500)], [host("h1")])
    h = res["hosts"]["h1"]
    assert h["vcpus"] == {"used": 8, "capacity": 32, "total": 32, "free": 24, "percent": 25.0}
    assert h["memory"]["percent"] == 25.0 and h["disk"]["percent"] == 25.0


def test_without_ortools_falls_back_with_warning():
    code = textwrap.dedent("""
        import json, sys
        sys.modules["ortools"] = None          # as if the package were not installed
        from ansible_collections.hospital.cloud.plugins.plugin_utils.placement.solver import placement
        hosts = [dict(name="h%d" % i, vcpus=10, memory=1000, disk=10) for i in range(4)]
        vms = [dict(name="v%d" % i, vcpus=s, memory=1, disk=1) for i, s in enumerate([6, 5, 4, 3, 2])]
        print(json.dumps(placement(vms, hosts)))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=dict(os.environ))
    res = json.loads(out.stdout)
    assert res["summary"]["solver"] == "heuristic"
    assert any("OR-Tools" in w for w in res["warnings"])
