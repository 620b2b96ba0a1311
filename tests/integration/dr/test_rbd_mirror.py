"""Site disaster recovery with snapshot-based rbd-mirror between two real clusters (issue #17).

Site A and site B are two test-bed clusters on 127.0.0.1, each with its own rbd-mirror daemon. Every
mirroring step goes through hospital.cloud.rbd_mirror: check mode first (predicts, changes nothing),
then for real, then both again (no change). The tests run in order and share one image:

1. set-up and RPO: a marker written on A is readable on B within the goal (1-minute schedule);
2. planned failover A -> B (RTO from the demote on A to B primary with the marker read and written);
3. planned failback B -> A (markers written on B while it was primary are on A);
4. unplanned failover: every daemon of site A frozen (SIGSTOP), B promoted with force;
5. failback after it: A thawed, demoted and resynced from B, then planned failover back to A; nothing
   written on B is lost.

Figures: ``DR FIGURES {json}`` at the end of the run and .cache/dr/dr-figures.json. Not in
``make test`` (CI budget): ``make test-dr``.
"""

from __future__ import annotations

import json
import time

import pytest

from testbed.poll import seconds_until, wait_for

pytestmark = [pytest.mark.ceph, pytest.mark.slow, pytest.mark.dr, pytest.mark.timeout(1500)]

POOL = "dr-vms"
IMAGE = "pacs-01-disk0"
SCHEDULE = "1m"
RPO_GOAL_S = 120
MARKERS: dict[str, int] = {}  # marker -> offset in the image


def _marker(name: str) -> tuple[int, bytes]:
    offset = MARKERS.setdefault(name, (len(MARKERS) + 1) << 20)
    return offset, ("hc-dr-marker:%s" % name).encode().ljust(64, b".")


def write_marker(site, name: str) -> float:
    offset, data = _marker(name)
    site.write(POOL, IMAGE, offset, data)
    return time.monotonic()


def has_marker(site, name: str) -> bool:
    offset, data = _marker(name)
    try:
        return site.read(POOL, IMAGE, offset, len(data)) == data
    except Exception:  # pylint: disable=broad-except
        # the image is absent while it is (re)synced
        return False


def mirror(run_module, site, args, check=False, no_log=False):
    extra = {"_ansible_no_log": True} if no_log else {}
    return run_module("hospital.cloud.rbd_mirror", dict(site.conn, **dict(args, **extra)), check=check)


def converge(run_module, site, args, expect, no_log=False):
    """Check mode (predicts `expect`), real run (makes it), check and real again (no change)."""
    pre = mirror(run_module, site, args, check=True)
    assert not pre.get("failed") and pre["changed"], pre
    assert [c["prefix"] for c in pre["calls"]] == expect, pre["calls"]
    res = mirror(run_module, site, args, no_log=no_log)
    assert not res.get("failed") and res["changed"] and res["calls"] == pre["calls"], res
    for check in (True, False):
        again = mirror(run_module, site, args, check=check)
        assert not again.get("failed") and again["changed"] is False and again["calls"] == [], again
    return res


def role(run_module, site, primary: bool) -> bool:
    res = mirror(run_module, site, {"pool": POOL, "images": [IMAGE]})
    assert not res.get("failed"), res
    return res["images"][0]["primary"] is primary


def demote_planned(run_module, site, timeout=180):
    """Planned demotion: refused (nothing changed) until the peer's rbd-mirror replays the image (it
    takes up to ~30 s to notice a fresh promotion); then check mode, real run, no change again."""
    args = {"pool": POOL, "images": [IMAGE], "role": "secondary"}
    t0 = time.monotonic()
    while True:
        pre = mirror(run_module, site, args, check=True)
        if not pre.get("failed"):
            break
        assert "does not replay it yet" in pre["msg"] and pre["calls"] == [], pre
        assert time.monotonic() - t0 < timeout, pre
        time.sleep(1)
    waited = time.monotonic() - t0
    converge(run_module, site, args, ["rbd mirror image demote"])
    return waited


def promote_planned(run_module, site, timeout=180):
    """Planned promotion, as a playbook's `until` does it: refused (nothing changed) until the peer's
    demotion snapshot is completely synced here; check mode then predicts it, the real run makes it,
    a second run changes nothing. Returns the seconds spent waiting for the sync."""
    args = {"pool": POOL, "images": [IMAGE], "role": "primary"}
    t0 = time.monotonic()
    while True:
        pre = mirror(run_module, site, args, check=True)
        if not pre.get("failed"):
            break
        assert "demot" in pre["msg"] and "force" in pre["msg"] and pre["calls"] == [], pre  # the hint, no traceback
        assert time.monotonic() - t0 < timeout, pre
        time.sleep(1)
    waited = time.monotonic() - t0
    assert pre["changed"] and [c["prefix"] for c in pre["calls"]] == ["rbd mirror image promote"], pre
    res = mirror(run_module, site, args)
    assert not res.get("failed") and res["changed"] and res["calls"] == pre["calls"], res
    assert mirror(run_module, site, args)["changed"] is False
    return waited


@pytest.fixture(scope="module")
def dr(sites, run_module, figures):
    """Pools on both sites, the image on A, mirroring set up with the module, both daemons running."""
    a, b = sites
    pool = {"name": POOL, "pg_num": 8, "pg_autoscale_mode": "off", "application": ["rbd"]}
    for site in (a, b):
        res = run_module("hospital.cloud.ceph_pool", dict(site.conn, **pool))
        assert not res.get("failed"), res
    image = {"pool": POOL, "name": IMAGE, "size": "64M", "features": ["layering", "exclusive-lock"]}
    res = run_module("hospital.cloud.rbd_image", dict(a.conn, **image))
    assert not res.get("failed"), res
    site_a = {"pool": POOL, "site_name": "site-a", "images": [IMAGE], "schedule_interval": SCHEDULE,
              "peer_token_create": True}
    res = converge(run_module, a, site_a, ["rbd mirror pool peer site-name set", "rbd mirror pool enable",
                                           "rbd mirror pool peer bootstrap create", "rbd mirror image enable",
                                           "rbd mirror snapshot schedule add"], no_log=True)
    token = res["peer_token"]
    assert token and res["images"][0]["primary"] and res["images"][0]["mode"] == "snapshot", res
    plain = mirror(run_module, a, site_a)
    assert "peer_token" not in plain and token not in json.dumps(plain), "token returned without no_log"
    site_b = {"pool": POOL, "site_name": "site-b", "schedule_interval": SCHEDULE, "peer_token": token}
    res = converge(run_module, b, site_b, ["rbd mirror pool peer site-name set", "rbd mirror pool enable",
                                           "rbd mirror pool peer bootstrap import",
                                           "rbd mirror snapshot schedule add"])
    assert token not in json.dumps(res), "token in a result"
    assert [(p["site_name"], p["direction"]) for p in res["pool"]["peers"]] == [("site-a", "rx-tx")], res
    # rx-tx: the import registered site B on site A as well (what failback needs)
    res = mirror(run_module, a, {"pool": POOL})
    assert [(p["site_name"], p["direction"]) for p in res["pool"]["peers"]] == [("site-b", "rx-tx")], res
    t0 = time.monotonic()
    for site in (a, b):
        site.start_mirror()
    figures["initial_sync_s"] = round(seconds_until(lambda: _replaying(run_module, b), 240, "image on site B"), 1)
    figures["initial_sync_from_daemon_start"] = round(time.monotonic() - t0, 1)
    return a, b


def _replaying(run_module, site) -> bool:
    res = mirror(run_module, site, {"pool": POOL, "images": [IMAGE]})
    return not res.get("failed") and res["images"][0]["status"]["state"] == "replaying"


def test_bad_input_fails_clearly_and_changes_nothing(dr, run_module):
    a, dummy = dr
    cases = [
        ({"pool": "no-such-pool"}, "pool no-such-pool does not exist"),
        ({"pool": POOL, "images": ["no-such-image"]}, "do not exist in pool"),
        ({"pool": POOL, "schedule_interval": "5x"}, "is not a number with a unit"),
        ({"pool": POOL, "images": [IMAGE], "force": True}, "force: true only applies"),
        ({"pool": POOL, "images": [IMAGE], "role": "secondary", "force": True}, "force: true only applies"),
        ({"pool": POOL, "images": [IMAGE], "role": "primary", "resync": True}, "cannot be combined with role: primary"),
        ({"pool": POOL, "images": [IMAGE], "resync": True}, "is primary on this site"),
        ({"pool": POOL, "peer_token": "bm90IGEgdG9rZW4="}, "is not an rbd-mirror bootstrap token"),
    ]
    for args, msg in cases:
        for check in (True, False):
            res = mirror(run_module, a, args, check=check)
            assert res.get("failed") and msg in res["msg"], (args, res)
            assert res["calls"] == [] and "Traceback" not in res.get("_stderr", ""), res
            assert "bm90IGEgdG9rZW4=" not in json.dumps(res), "the token in a result"
    assert role(run_module, a, primary=True)


def test_rpo_marker_on_a_is_readable_on_b(dr, figures):
    """Replication lag of a write with the 1-minute schedule, sampled twice; goal <= 120 s."""
    a, b = dr
    lags = []
    for n in range(2):
        t_write = write_marker(a, "rpo-%d" % n)
        wait_for(lambda n=n: has_marker(b, "rpo-%d" % n), RPO_GOAL_S + 60, "marker rpo-%d on B" % n)
        lags.append(round(time.monotonic() - t_write, 1))
    figures["rpo_lag_s"] = lags
    figures["rpo_goal_s"] = RPO_GOAL_S
    figures["schedule"] = SCHEDULE
    assert max(lags) <= RPO_GOAL_S, lags


def test_planned_failover_a_to_b(dr, run_module, figures):
    a, b = dr
    write_marker(a, "planned-1")
    t0 = time.monotonic()
    demote_planned(run_module, a)
    promote_planned(run_module, b)
    t_primary = time.monotonic() - t0
    assert has_marker(b, "planned-1"), "a write made before the demote is missing on B"
    write_marker(b, "on-b-1")
    assert has_marker(b, "on-b-1")
    figures["planned_failover_rto_s"] = round(time.monotonic() - t0, 1)
    figures["planned_failover_promoted_s"] = round(t_primary, 1)
    assert role(run_module, a, primary=False) and role(run_module, b, primary=True)


def test_planned_failback_b_to_a_keeps_what_b_wrote(dr, run_module, figures):
    a, b = dr
    write_marker(b, "on-b-2")
    t0 = time.monotonic()
    figures["failback_waited_for_peer_replay_s"] = round(demote_planned(run_module, b), 1)
    promote_planned(run_module, a)
    for name in ("on-b-1", "on-b-2", "planned-1"):
        assert has_marker(a, name), "%s written on B is missing on A after failback" % name
    write_marker(a, "on-a-after-failback")
    figures["planned_failback_rto_s"] = round(time.monotonic() - t0, 1)
    assert role(run_module, a, primary=True) and role(run_module, b, primary=False)


def test_unplanned_failover_force_promote_on_b(dr, run_module, figures):
    a, b = dr
    wait_for(lambda: _replaying(run_module, b), 180, "B replaying", interval=3)
    t_write = write_marker(a, "synced-before-loss")
    wait_for(lambda: has_marker(b, "synced-before-loss"), RPO_GOAL_S + 60, "last marker on B")
    figures["rpo_lag_before_loss_s"] = round(time.monotonic() - t_write, 1)
    write_marker(a, "maybe-lost")  # after the last synced snapshot: inside the RPO window
    frozen = a.freeze()
    assert frozen, "no daemon of site A to freeze"
    t0 = time.monotonic()
    args = {"pool": POOL, "images": [IMAGE], "role": "primary"}
    refused = mirror(run_module, b, args)
    assert refused.get("failed") and "force: true" in refused["msg"], refused  # planned promote refused
    converge(run_module, b, dict(args, force=True), ["rbd mirror image promote"])
    assert has_marker(b, "synced-before-loss"), "a write synced before the loss is missing on B"
    write_marker(b, "on-b-after-loss")
    assert has_marker(b, "on-b-after-loss")
    figures["unplanned_failover_rto_s"] = round(time.monotonic() - t0, 1)
    figures["unplanned_lost_write_in_rpo_window"] = not has_marker(b, "maybe-lost")


def test_failback_after_unplanned_failover(dr, run_module, figures):
    """A comes back still primary (split brain): demote + resync A from B, then planned failover to A."""
    a, b = dr
    t0 = time.monotonic()
    a.thaw()
    a.cluster.wait_health_ok(timeout=180, osds=3)
    figures["site_a_back_s"] = round(time.monotonic() - t0, 1)
    assert role(run_module, a, primary=True)  # A never saw the failover
    t1 = time.monotonic()
    args = {"pool": POOL, "images": [IMAGE], "role": "secondary", "resync": True}
    pre = mirror(run_module, a, args, check=True)
    assert [c["prefix"] for c in pre["calls"]] == ["rbd mirror image demote", "rbd mirror image resync"], pre
    res = mirror(run_module, a, args)
    assert not res.get("failed") and res["calls"] == pre["calls"], res
    wait_for(lambda: has_marker(a, "on-b-after-loss"), 300, "B's writes resynced to A", interval=2)
    figures["resync_s"] = round(time.monotonic() - t1, 1)
    wait_for(lambda: _replaying(run_module, a), 180, "A replaying", interval=3)
    again = mirror(run_module, a, args)
    assert again["changed"] is False, again
    write_marker(b, "on-b-before-failback")
    t2 = time.monotonic()
    demote_planned(run_module, b)
    promote_planned(run_module, a)
    figures["failback_rto_s"] = round(time.monotonic() - t2, 1)
    figures["failback_total_s"] = round(time.monotonic() - t0, 1)
    for name in ("on-b-after-loss", "on-b-before-failback", "synced-before-loss", "on-b-1", "on-b-2"):
        assert has_marker(a, name), "%s is missing on A after failback" % name
    write_marker(a, "on-a-final")
    assert has_marker(a, "on-a-final")
    assert role(run_module, a, primary=True) and role(run_module, b, primary=False)
    figures["markers"] = sorted(MARKERS)
