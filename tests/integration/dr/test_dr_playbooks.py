"""The DR playbooks (dr_setup.yml, dr_failover.yml, dr_resync.yml; role hospital.cloud.dr) against two real
clusters, as an operator runs them: one admin host per site (here both are this machine, connection local, each
with its own cluster's ceph.conf and keyring). Order: set-up (check mode, real, again), refusals, planned
failover A -> B, unplanned failover back to A with B frozen, resync of B, planned failover B -> A... in short the
whole round trip, with markers that must never be lost. Not in ``make test``: ``make test-dr``.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from integration.dr.test_rbd_mirror import has_marker, wait_until, write_marker
from testbed.ansible_run import VENV_PY

pytestmark = [pytest.mark.ceph, pytest.mark.slow, pytest.mark.dr, pytest.mark.timeout(1800)]

PLAYBOOKS = Path(__file__).resolve().parents[3] / "playbooks"
POOL, IMAGE = "dr-vms", "pacs-01-disk0"  # the names test_rbd_mirror's marker helpers use
RPO_GOAL_S = 120
FIGURES: dict = {}


@pytest.fixture(scope="module")
def dr(sites, tmp_path_factory, figures):
    a, b = sites
    for site in (a, b):
        site.cluster.cli("osd", "pool", "create", POOL, "8")
        site.cluster.cli("osd", "pool", "application", "enable", POOL, "rbd")
    import rbd  # pylint: disable=import-outside-toplevel

    handle = a.cluster.rados()
    with handle.open_ioctx(POOL) as ioctx:
        rbd.RBD().create(ioctx, IMAGE, 64 << 20, features=rbd.RBD_FEATURE_LAYERING | rbd.RBD_FEATURE_EXCLUSIVE_LOCK)
    handle.shutdown()
    a.start_mirror()
    b.start_mirror()
    inv = tmp_path_factory.mktemp("dr") / "inventory.ini"
    lines = []
    for group, host, site in (("dr_site_a", "site-a-admin", a), ("dr_site_b", "site-b-admin", b)):
        lines += ["[%s]" % group, "%s ansible_connection=local ansible_python_interpreter=%s dr_ceph_conf=%s "
                  "dr_ceph_keyring=%s dr_ceph_client=%s" % (host, VENV_PY, site.cluster.conf, site.cluster.keyring,
                                                            site.cluster.client)]
    inv.write_text("\n".join(lines + ["[all:vars]", "dr_pool=%s" % POOL, "dr_images=['%s']" % IMAGE]) + "\n")
    yield a, b, inv
    figures["playbooks"] = FIGURES


def play(run_playbook, inv, name, check=False, **extra):
    t0 = time.monotonic()
    res = run_playbook(PLAYBOOKS / name, extra_vars=extra or None, inventory=inv, check=check, diff=check)
    res.seconds = round(time.monotonic() - t0, 1)
    return res


def changed(res) -> int:
    return sum(h.get("changed", 0) for h in res.data.get("stats", {}).values())


def primary(site) -> bool:
    import rbd  # pylint: disable=import-outside-toplevel

    handle = site.cluster.rados()
    try:
        with handle.open_ioctx(POOL) as ioctx:
            with rbd.Image(ioctx, IMAGE, read_only=True) as img:
                return bool(img.mirror_image_get_info()["primary"])
    finally:
        handle.shutdown()


def mirror_mode(site) -> int:
    import rbd  # pylint: disable=import-outside-toplevel

    handle = site.cluster.rados()
    try:
        with handle.open_ioctx(POOL) as ioctx:
            return rbd.RBD().mirror_mode_get(ioctx)
    finally:
        handle.shutdown()


def test_setup_check_then_real_then_no_change(dr, run_playbook):
    a, b, inv = dr
    predicted = play(run_playbook, inv, "dr_setup.yml", check=True)
    assert predicted.rc == 0, predicted.stdout[-3000:]
    assert changed(predicted) > 0
    import rbd  # pylint: disable=import-outside-toplevel

    assert mirror_mode(a) == mirror_mode(b) == rbd.RBD_MIRROR_MODE_DISABLED  # check mode changed nothing
    done = play(run_playbook, inv, "dr_setup.yml")
    assert done.rc == 0, done.stdout[-3000:]
    again = play(run_playbook, inv, "dr_setup.yml")
    assert again.rc == 0 and changed(again) == 0, again.stdout[-3000:]
    assert "eyJ" not in done.stdout + predicted.stdout  # the bootstrap token (base64 of JSON) never printed
    t0 = write_marker(a, "pb-setup")
    FIGURES["rpo_s"] = round(wait_until("marker on B", lambda: has_marker(b, "pb-setup"), RPO_GOAL_S), 1)
    FIGURES["setup_s"] = done.seconds
    assert time.monotonic() - t0 < RPO_GOAL_S + 5


@pytest.mark.parametrize("extra,text", [
    ({"dr_to": "b", "dr_mode": "unplanned"}, "set dr_force_promote=true to confirm"),
    ({"dr_to": "c"}, "dr_to: a or b, got c"),
    ({"dr_images": []}, "dr_images: no image to mirror"),
], ids=["unplanned-without-force", "unknown-site", "no-images"])
def test_refusals_change_nothing(dr, run_playbook, extra, text):
    a, b, inv = dr
    res = play(run_playbook, inv, "dr_failover.yml", **extra)
    assert res.rc != 0 and text in res.stdout, res.stdout[-3000:]
    assert primary(a) and not primary(b)


def test_planned_failover_to_b(dr, run_playbook):
    a, b, inv = dr
    write_marker(a, "pb-before-planned")
    res = play(run_playbook, inv, "dr_failover.yml", dr_to="b")
    assert res.rc == 0, res.stdout[-3000:]
    FIGURES["planned_failover_s"] = res.seconds
    assert primary(b) and not primary(a)
    assert has_marker(b, "pb-before-planned")  # a planned failover loses nothing
    write_marker(b, "pb-on-b")
    again = play(run_playbook, inv, "dr_failover.yml", dr_to="b")
    assert again.rc == 0 and changed(again) == 0


def test_unplanned_failover_to_a_then_resync_and_failback(dr, run_playbook):
    """B (primary now) is lost: A takes over with force. B comes back as a stale primary: dr_resync makes it a
    copy of A again, then a planned failover brings the images back to B with every marker."""
    a, b, inv = dr
    wait_until("B's marker on A", lambda: has_marker(a, "pb-on-b"), RPO_GOAL_S)
    b.freeze()
    res = play(run_playbook, inv, "dr_failover.yml", dr_to="a", dr_mode="unplanned", dr_force_promote=True)
    assert res.rc == 0, res.stdout[-3000:]
    FIGURES["unplanned_failover_s"] = res.seconds
    assert primary(a) and has_marker(a, "pb-on-b")
    write_marker(a, "pb-while-b-lost")
    b.thaw()
    refused = play(run_playbook, inv, "dr_resync.yml", dr_resync_site="b")
    assert refused.rc != 0 and "set dr_resync=true to confirm" in refused.stdout
    res = play(run_playbook, inv, "dr_resync.yml", dr_resync_site="b", dr_resync=True)
    assert res.rc == 0, res.stdout[-3000:]
    FIGURES["resync_s"] = res.seconds
    back = play(run_playbook, inv, "dr_failover.yml", dr_to="b")
    assert back.rc == 0, back.stdout[-3000:]
    FIGURES["failback_s"] = back.seconds
    assert primary(b) and not primary(a)
    for name in ("pb-setup", "pb-before-planned", "pb-on-b", "pb-while-b-lost"):
        assert has_marker(b, name), name
