"""hospital.cloud.maintenance_plan / maintenance_moves: every branch of the old Jinja of
roles/host_maintenance/tasks/plan.yml (state, act/enter/leave, refusals, placement input, moves, summary)."""

from __future__ import annotations

import base64
import json

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.hospital.cloud.plugins.filter.rack import FilterModule

F = FilterModule().filters()
OK = {"status": "HEALTH_OK", "checks": {}}
FLAGS = {"status": "HEALTH_WARN", "checks": {"OSD_FLAGS": {"summary": {"message": "1 host has noout"}}}}
WARN = {"status": "HEALTH_WARN", "checks": {"OSD_FLAGS": {"summary": {"message": "noout"}},
                                            "MON_DOWN": {"summary": {"message": "1/3 mons down"}}}}
TREE = {"nodes": [{"id": -1, "name": "default", "type": "root", "children": [-2, -3]},
                  {"id": -2, "name": "h1", "type": "host", "children": [2, 0, 1]},
                  {"id": -3, "name": "h2", "type": "host", "children": [3]},
                  {"id": 0, "name": "osd.0", "type": "osd", "status": "up"},
                  {"id": 1, "name": "osd.1", "type": "osd", "status": "down"},
                  {"id": 2, "name": "osd.2", "type": "osd", "status": "up"},
                  {"id": 3, "name": "osd.3", "type": "osd", "status": "up"}]}
NOOUT = {"crush_node_flags": {"h1": ["noout"]}}


def dom(name, host="a", active=True, local=(), vcpus=1, memory=512):
    return {"name": name, "host": host, "active": active, "autostart": active, "vcpus": vcpus, "memory": memory,
            "local_disks": list(local), "owner": ""}


def mark(value):
    return {"content": base64.b64encode(json.dumps(value).encode()).decode(), "encoding": "base64"}


BUSY = [dom("v1"), dom("v2", active=False), dom("v3", host="b")]


def plan(domains=None, action="none", back=True, mark_read=None, health=None, tree=None, dump=None,
         upgrades=None, vms=None):
    return F["maintenance_plan"](BUSY if domains is None else domains, host="a", action=action,
                                 return_to_service=back, hostname="h1", mark=mark_read,
                                 health=OK if health is None else health, osd_tree=TREE if tree is None else tree,
                                 osd_dump=dump or {}, upgrades=upgrades, vms=vms)


def test_state():
    s = plan(dump=NOOUT, mark_read=mark({"maintenance": True}), upgrades={"stdout": "4"})["state"]
    assert s["on_host"] == BUSY[:2] and s["domains"] == BUSY and s["duplicates"] == []
    assert (s["marked"], s["noout"], s["health"], s["checks"]) == (True, True, "HEALTH_OK", {})
    assert (s["bucket"], s["osds"], s["osds_up"], s["upgrades"]) == ("h1", [0, 1, 2], [0, 2], 4)


@pytest.mark.parametrize("kwargs, expected", [
    # no mark file (slurp failed), no health (empty), no bucket in the tree, no flags
    ({"health": {}, "tree": {"nodes": []}}, (False, False, "unknown", [], [])),
    ({"mark_read": {"failed": True, "msg": "file not found"}}, (False, False, "HEALTH_OK", [0, 1, 2], [0, 2])),
    ({"mark_read": mark({})}, (False, False, "HEALTH_OK", [0, 1, 2], [0, 2])),
    ({"mark_read": mark({"maintenance": "yes"})}, (True, False, "HEALTH_OK", [0, 1, 2], [0, 2])),
    ({"mark_read": mark({"maintenance": False}), "dump": {"crush_node_flags": {"h2": ["noout"]}}},
     (False, False, "HEALTH_OK", [0, 1, 2], [0, 2])),
    ({"dump": {"crush_node_flags": {"h1": ["noin", "noout"]}}}, (False, True, "HEALTH_OK", [0, 1, 2], [0, 2])),
], ids=["nothing", "no-mark-file", "empty-mark", "mark-yes", "other-host-noout", "noout"])
def test_state_defaults(kwargs, expected):
    s = plan(**kwargs)["state"]
    assert (s["marked"], s["noout"], s["health"], s["osds"], s["osds_up"]) == expected


@pytest.mark.parametrize("upgrades, count", [
    (None, 0), ({"skipped": True}, 0), ({"stdout": ""}, 0), ({"stdout": "0"}, 0), ({"stdout": "12"}, 12),
    ({"stdout": "2.0"}, 2), ({"stdout": "junk"}, 0)])
def test_upgrades(upgrades, count):
    assert plan(upgrades=upgrades)["state"]["upgrades"] == count


def test_duplicates_sorted_once():
    s = plan(domains=[dom("z", "a"), dom("z", "b"), dom("m", "b"), dom("m", "c"), dom("m", "a"), dom("q", "c")])
    assert s["state"]["duplicates"] == ["m", "z"]


# (domains, action, upgrades, return, mark, dump, tree) -> (act, enter, leave)
EMPTY = []
NO_OSDS = {"nodes": []}


@pytest.mark.parametrize("domains, action, upgrades, back, marked, noout, tree, expected", [
    (BUSY, "none", None, True, False, False, TREE, (False, True, True)),        # VMs to move: always enter
    (EMPTY, "reboot", None, True, False, False, TREE, (True, True, True)),      # reboot always acts
    (EMPTY, "upgrade", "3", True, False, False, TREE, (True, True, True)),      # packages to upgrade
    (EMPTY, "upgrade", "0", True, False, False, TREE, (False, False, False)),   # none: nothing to do
    (EMPTY, "upgrade", "0", True, True, True, TREE, (False, False, True)),      # left by a run: leave
    (EMPTY, "none", None, True, True, False, TREE, (False, False, True)),       # marked only: leave
    (EMPTY, "none", None, True, False, True, TREE, (False, False, True)),       # noout only: leave
    (EMPTY, "none", None, False, False, False, TREE, (False, True, False)),     # stay: mark it
    (EMPTY, "none", None, False, True, False, TREE, (False, True, False)),      # stay, marked, noout missing
    (EMPTY, "none", None, False, True, True, TREE, (False, False, False)),      # in maintenance already
    (EMPTY, "none", None, False, True, False, NO_OSDS, (False, False, False)),  # no OSDs, no noout needed
    (EMPTY, "reboot", None, False, True, True, TREE, (True, True, False)),      # stay, reboot again
], ids=["vms", "reboot", "upgrade", "upgrade-none", "leave-after-run", "leave-marked", "leave-noout", "stay",
        "stay-noout-missing", "stay-done", "stay-no-osds", "stay-reboot"])
def test_act_enter_leave(domains, action, upgrades, back, marked, noout, tree, expected):
    p = plan(domains=domains, action=action, upgrades={"stdout": upgrades} if upgrades else None, back=back,
             mark_read=mark({"maintenance": marked}), dump=NOOUT if noout else {}, tree=tree)
    assert (p["act"], p["enter"], p["leave"]) == expected
    if not p["enter"]:
        assert p["refusals"] == []


HEALTH_MSG = ("Refused, nothing was changed: Ceph is HEALTH_WARN, not HEALTH_OK (%s). Maintenance would take a's "
              "OSDs (osd.0, osd.1, osd.2) out of a cluster that is already degraded or warning: fix that first.")


@pytest.mark.parametrize("health, marked, noout, refusal", [
    (OK, False, False, None),
    (FLAGS, True, True, None),   # its own noout flag, left by an earlier run
    (FLAGS, False, True, HEALTH_MSG % "1 host has noout"),
    (FLAGS, True, False, HEALTH_MSG % "1 host has noout"),
    (WARN, True, True, HEALTH_MSG % "noout; 1/3 mons down"),
    ({"status": "HEALTH_ERR", "checks": {"X": {}}}, False, False,
     (HEALTH_MSG % "").replace("HEALTH_WARN", "HEALTH_ERR")),
], ids=["ok", "own-noout", "flags-unmarked", "flags-no-noout", "other-check", "no-summary"])
def test_health_refusal(health, marked, noout, refusal):
    p = plan(health=health, mark_read=mark({"maintenance": marked}), dump=NOOUT if noout else {})
    assert p["refusals"] == ([refusal] if refusal else [])


MOVE_PREFIX = "Refused, nothing was changed: "
LOCAL = "v1, v4 on a have local disks (only Ceph RBD disks can follow a VM to another host). "
DUPS = "defined on several hosts: v3 (remove the stale definition first)."


@pytest.mark.parametrize("domains, refusal", [
    ([dom("v1", local=["vda"]), dom("v4", local=["sda", "vdb"]), dom("v5")], MOVE_PREFIX + LOCAL),
    ([dom("v1"), dom("v3", "b"), dom("v3", "c")], MOVE_PREFIX + DUPS),
    ([dom("v1", local=["vda"]), dom("v4", local=["sda"]), dom("v3", "b"), dom("v3", "c")],
     MOVE_PREFIX + LOCAL + DUPS),
    # a duplicate refuses the run even when this host holds no VM
    ([dom("v3", "b"), dom("v3", "c")], MOVE_PREFIX + DUPS),
], ids=["local", "duplicate", "both", "duplicate-elsewhere"])
def test_cannot_move_refusal(domains, refusal):
    assert plan(domains=domains, back=False)["refusals"] == [refusal]


def test_health_refusal_comes_first():
    p = plan(domains=[dom("v1", local=["vda"])], health=WARN)
    assert len(p["refusals"]) == 2 and p["refusals"][0].startswith(MOVE_PREFIX + "Ceph is HEALTH_WARN")


def test_placement_input():
    vms = [{"name": "v1", "vcpus": 64, "memory": 1, "anti_affinity": {"group": "g"}, "interfaces": [{}],
            "extra": {}}, "junk", {"vcpus": 1}, {"name": "v3", "pin": "b", "requires": ["ssd"], "disk": 50}]
    p = plan(vms=vms)["placement"]
    # the domain's size wins over the declared one; disks are in Ceph; unknown keys dropped
    assert p["vms"] == [{"name": "v1", "vcpus": 1, "memory": 512, "anti_affinity": {"group": "g"}, "disk": 0},
                        {"name": "v2", "vcpus": 1, "memory": 512, "disk": 0},
                        {"name": "v3", "vcpus": 1, "memory": 512, "disk": 0, "pin": "b", "requires": ["ssd"]}]
    assert p["current"] == {"v3": "b"}


PLACED = {"assignment": {"v1": "c", "v2": "b", "v3": "b"}, "moves": []}


@pytest.mark.parametrize("check, migration, back, expected", [
    (False, "auto", True, ["mark a in maintenance, set noout on h1", "move v1 a -> c (live, cold if that fails)",
                           "move v2 a -> b (cold: shut off)",
                           "bring a back: unset noout, clear the mark, wait for HEALTH_OK"]),
    (True, "cold", False, ["would mark a in maintenance, set noout on h1", "would move v1 a -> c (cold)",
                           "would move v2 a -> b (cold: shut off)"]),
    (False, "live", False, ["mark a in maintenance, set noout on h1", "move v1 a -> c (live)",
                            "move v2 a -> b (cold: shut off)"]),
], ids=["auto", "check-cold", "live"])
def test_moves_and_summary(check, migration, back, expected):
    m = F["maintenance_moves"](plan(back=back), PLACED, migration=migration, check_mode=check)
    assert m["moves"] == [{"vm": "v1", "from": "a", "to": "c", "active": True, "autostart": True},
                          {"vm": "v2", "from": "a", "to": "b", "active": False, "autostart": False}]
    assert m["other_moves"] == [] and m["summary"] == expected


@pytest.mark.parametrize("kwargs, expected", [
    ({"domains": EMPTY, "action": "upgrade", "upgrades": {"stdout": "7"}, "dump": NOOUT},
     ["mark a in maintenance", "upgrade (7 packages)", "bring a back: unset noout, clear the mark, wait for HEALTH_OK"]),
    ({"domains": EMPTY, "action": "reboot"},
     ["mark a in maintenance, set noout on h1", "reboot",
      "bring a back: unset noout, clear the mark, wait for HEALTH_OK"]),
    ({"domains": EMPTY}, ["a holds no VM, needs no action and is back in service: nothing to do"]),
    ({"domains": EMPTY, "back": False, "mark_read": mark({"maintenance": True}), "dump": NOOUT},
     ["a holds no VM, needs no action and is in maintenance already: nothing to do"]),
    ({"domains": EMPTY, "mark_read": mark({"maintenance": True})},
     ["bring a back: unset noout, clear the mark, wait for HEALTH_OK"]),
], ids=["upgrade-noout-set", "reboot", "nothing-back", "nothing-stay", "leave-only"])
def test_summary_without_moves(kwargs, expected):
    m = F["maintenance_moves"](plan(**kwargs), None)
    assert m["moves"] == [] and m["summary"] == expected


def test_other_moves():
    placed = {"assignment": {"v1": "c", "v2": "b", "v3": "c"},
              "moves": [{"vm": "v1", "from": "a", "to": "c", "reason": "host in maintenance"},
                        {"vm": "v3", "from": "b", "to": "c", "reason": "anti-affinity"}]}
    assert F["maintenance_moves"](plan(), placed)["other_moves"] == [placed["moves"][1]]


@pytest.mark.parametrize("kwargs, match", [
    ({"action": "restart"}, "action must be one of none, reboot, upgrade"),
    ({"host": ""}, "host must be a host name"),
    ({"hostname": None}, "hostname must be"),
    ({"health": "HEALTH_OK"}, "health must be a mapping"),
    ({"osd_tree": {"nodes": "x"}}, "osd_tree.nodes must be a list"),
    ({"mark": {"content": "bm90IGpzb24="}}, "mark is not base64 JSON"),
    ({"vms": "v1"}, "vms must be a list"),
    ({"_input": [{"name": "v1"}]}, "output of hospital.cloud.domain_view"),
])
def test_plan_bad_input(kwargs, match):
    args = {"host": "a", "action": "none", "return_to_service": True, "hostname": "h1"}
    domains = kwargs.pop("_input", BUSY)
    args.update(kwargs)
    with pytest.raises(AnsibleFilterError, match=match):
        F["maintenance_plan"](domains, **args)


@pytest.mark.parametrize("args, match", [
    (({}, {}), "result of hospital.cloud.maintenance_plan"),
    ((None, []), "result of hospital.cloud.maintenance_plan"),
    (("plan", ["x"]), "placement must be the result"),
    (("plan", {"assignment": {"v1": "c"}}), "the placement has no host for v2"),
])
def test_moves_bad_input(args, match):
    args = tuple(plan() if a == "plan" else a for a in args)
    with pytest.raises(AnsibleFilterError, match=match):
        F["maintenance_moves"](*args)


def test_moves_bad_migration():
    with pytest.raises(AnsibleFilterError, match="migration must be one of auto, live, cold"):
        F["maintenance_moves"](plan(), PLACED, migration="warp")
