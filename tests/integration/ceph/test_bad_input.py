"""Bad input fails with a clear message, sends nothing, and leaves the cluster as it was."""

from __future__ import annotations

import subprocess
import time

import pytest

from conftest import pools_snapshot, snapshot_changes
from testbed.ceph import free_ports

pytestmark = [pytest.mark.ceph, pytest.mark.timeout(600)]

P = "hc-t-bad"

CASES = [
    ("ceph_pool", {"name": P, "size": 2, "min_size": 3}, "min_size (3) cannot be greater than size (2)"),
    ("ceph_pool", {"name": P, "min_size": 4}, "min_size (4) cannot be greater than the size (3)"),
    ("ceph_pool", {"name": P, "application": ["rbd", "bogus"]}, "value of application must be one or more of"),
    ("ceph_pool", {"name": P, "application": []}, "application needs at least one entry"),
    ("ceph_pool", {"name": P, "max_bytes": -1}, "max_bytes must be >= 0"),
    ("ceph_pool", {"name": P, "max_objects": -5}, "max_objects must be >= 0"),
    ("ceph_pool", {"name": "hc t bad"}, "invalid pool name 'hc t bad'"),
    ("ceph_pool", {"name": P, "state": "absent"}, "set allow_delete: true to confirm"),
    ("ceph_pool", {"name": P, "size": 1}, "set allow_size_one: true"),
    ("ceph_pool", {"name": P, "size": 0}, "size must be at least 1"),
    ("ceph_pool", {"name": P, "pg_num": 0}, "pg_num must be at least 1"),
    ("ceph_pool", {"name": P, "pg_num": 8, "pgp_num": 16}, "pgp_num (16) cannot be greater than pg_num (8)"),
    ("ceph_pool", {"name": P, "pool_type": "erasure"}, "pool_type=erasure needs erasure_profile"),
    ("ceph_pool", {"name": "hc-t-bad-ec", "pool_type": "erasure", "erasure_profile": "hc-t-nope"},
     "erasure-code profile 'hc-t-nope' does not exist"),
    ("ceph_pool", {"name": P, "pool_type": "erasure", "erasure_profile": "default"},
     "cannot be changed to erasure in place"),
    ("ceph_pool", {"name": P, "crush_rule": "hc-t-no-rule"}, "crush_rule 'hc-t-no-rule' does not exist"),
    ("ceph_pool", {"name": P, "compression_mode": "zstd"}, "value of compression_mode must be one of"),
    ("ceph_pool", {"name": P, "target_size_ratio": -0.5}, "target_size_ratio must be a number from 0"),
    ("ceph_pool", {"name": P, "pg_nums": 8}, "Unsupported parameters"),
    ("ceph_pool", {"name": P, "client": "admin"}, "client must be an entity name"),
    ("ceph_pool", {"name": P, "conf": "/nonexistent/ceph.conf"}, "cannot read Ceph configuration"),
    ("rbd_image", {"pool": P, "name": "disk", "size": "8M"}, "shrinking it to 8388608 bytes destroys data"),
    ("rbd_image", {"pool": P, "name": "disk", "state": "absent"}, "set allow_delete: true to confirm"),
    ("rbd_image", {"pool": P, "name": "disk", "features": ["exclusive-lock"]},
     "layering of image disk can only be chosen when the image is created"),
    ("rbd_image", {"pool": P, "name": "disk", "size": "ten gigs"}, "is not a number of bytes"),
    ("rbd_image", {"pool": P, "name": "new", "clone_from": {"image": "disk", "snapshot": "s"},
                   "import_from": "/etc/hostname"}, "mutually exclusive"),
    ("rbd_image", {"pool": P, "name": "new", "clone_from": {"image": "disk", "snapshot": "nope"}},
     "clone_from snapshot disk@nope does not exist"),
    ("rbd_image", {"pool": "hc-t-missing", "name": "new", "size": "8M"}, "pool hc-t-missing does not exist"),
    ("rbd_image", {"pool": P, "name": "new"}, "size is required to create image"),
    ("rbd_image", {"pool": P, "name": "bad/name", "size": "8M"}, "invalid name name 'bad/name'"),
    ("ceph_key", {"name": "libvirt", "caps": {"mon": "profile rbd"}}, "invalid entity name 'libvirt'"),
    ("ceph_key", {"name": "client.hc-t-bad", "caps": {"rgw": "allow *"}}, "unknown cap type 'rgw'"),
    ("ceph_key", {"name": "client.hc-t-bad", "caps": {"mon": ""}}, "caps.mon must be a non-empty string"),
    # issue #14 items 10 and 13: opt-ins and values that used to pass validation
    ("ceph_pool", {"name": P, "min_size": 1}, "set allow_min_size_one: true"),
    ("ceph_pool", {"name": P, "target_size_ratio": "nan"}, "target_size_ratio must be a number from 0"),
    ("ceph_pool", {"name": P, "target_size_ratio": "inf"}, "target_size_ratio must be a number from 0"),
    ("ceph_pool", {"name": P, "pg_num": 10 ** 30, "pg_autoscale_mode": "off"}, "pg_num must be at most 65536"),
    ("ceph_pool", {"name": P, "max_bytes": 2 ** 70}, "max_bytes must be at most"),
    ("ceph_pool", {"name": P, "max_objects": 2 ** 64}, "max_objects must be at most"),
    ("ceph_pool", {"name": P, "connect_timeout": 10 ** 30}, "connect_timeout must be a number of seconds"),
    ("rbd_image", {"pool": P, "name": "disk", "size": "99999999999P"}, "size must be at most"),
    ("ceph_key", {"name": "client.admin", "state": "absent"}, "set allow_admin_delete: true"),
    ("ceph_key", {"name": "client.bootstrap-osd", "state": "absent"}, "set allow_admin_delete: true"),
    ("ceph_key", {"name": "client.hc-t-bad", "caps": {"mon": "allow r\u0000"}}, "control characters"),
]


@pytest.fixture(scope="module")
def bad_setup(run_module, ceph_cluster):
    conn = {"conf": ceph_cluster.conf, "keyring": ceph_cluster.keyring}
    res = run_module("hospital.cloud.ceph_pool", dict(conn, name=P, size=3, min_size=2, pg_num=8,
                                                      pg_autoscale_mode="off", application=["rbd"]))
    assert not res.get("failed"), res
    res = run_module("hospital.cloud.rbd_image", dict(conn, pool=P, name="disk", size="16M", features=["layering"]))
    assert not res.get("failed"), res
    yield
    run_module("hospital.cloud.rbd_image", dict(conn, pool=P, name="disk", state="absent", allow_delete=True))
    run_module("hospital.cloud.ceph_pool", dict(conn, name=P, state="absent", allow_delete=True))


def _state(mon):
    auth = sorted(e["entity"] for e in mon("auth ls")["auth_dump"])
    return pools_snapshot(mon), auth, mon("config dump")


@pytest.mark.parametrize("module,args,message", CASES, ids=["%s-%d" % (c[0], i) for i, c in enumerate(CASES)])
def test_bad_input_fails_clearly_and_changes_nothing(ceph_module, ceph_cluster, mon, bad_setup, module, args, message):
    before = _state(mon)
    res = ceph_module(module, args)
    assert res["failed"] is True, res
    assert message in res["msg"], res["msg"]
    assert "Traceback" not in res["_stderr"] and "Traceback" not in res["msg"]
    assert res.get("calls", []) == []
    assert snapshot_changes(before, _state(mon)) == []


def _fails_fast(ceph_module, args, conn_args):
    t0 = time.monotonic()
    res = ceph_module("ceph_pool", dict(args, **conn_args))
    took = time.monotonic() - t0
    assert res["failed"] is True, res
    assert "cannot connect to Ceph cluster" in res["msg"], res["msg"]
    assert took < 20, "took %.1fs" % took
    return res


def test_unreachable_cluster_fails_fast(ceph_module, ceph_cluster, mon, bad_setup, tmp_path):
    port = free_ports(1)[0]
    conf = tmp_path / "ceph.conf"
    conf.write_text("[global]\nmon host = 127.0.0.1:%d\nauth client required = cephx\n" % port)
    before = _state(mon)
    res = _fails_fast(ceph_module, {"name": P, "size": 2, "connect_timeout": 3}, {"conf": str(conf)})
    assert "within 3s" in res["msg"]
    assert snapshot_changes(before, _state(mon)) == []


def test_wrong_keyring_fails_fast(ceph_module, ceph_cluster, mon, bad_setup, tmp_path):
    key = subprocess.run(["ceph-authtool", "--gen-print-key"], capture_output=True, text=True, check=True).stdout.strip()
    keyring = tmp_path / "wrong.keyring"
    keyring.write_text("[client.admin]\n\tkey = %s\n" % key)
    before = _state(mon)
    res = _fails_fast(ceph_module, {"name": P, "size": 2, "connect_timeout": 5}, {"keyring": str(keyring)})
    assert key not in str(res)
    assert snapshot_changes(before, _state(mon)) == []
