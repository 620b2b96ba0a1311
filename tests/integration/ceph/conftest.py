"""Helpers shared by the Ceph module tests (the cluster itself is the session fixture)."""

from __future__ import annotations

import json
import uuid

import pytest


@pytest.fixture
def conn(ceph_cluster):
    """Connection options of the test cluster, as the modules take them."""
    return {"conf": ceph_cluster.conf, "keyring": ceph_cluster.keyring, "client": ceph_cluster.client}


@pytest.fixture
def ceph_module(run_module, conn):
    """Run hospital.cloud.<name> against the test cluster."""

    def run(name, args, check=False, diff=False):
        return run_module("hospital.cloud." + name, dict(conn, **args), check=check, diff=diff)

    return run


class Mon:
    """Read-only mon commands over one librados connection (milliseconds, not a CLI fork each)."""

    def __init__(self, cluster):
        self.handle = cluster.rados()

    def __call__(self, prefix, **args):
        ret, out, outs = self.handle.mon_command(json.dumps(dict(args, prefix=prefix, format="json")), b"",
                                                 timeout=15)
        assert ret == 0, "%s: %s" % (prefix, outs)
        return json.loads(out) if out else None


@pytest.fixture(scope="session")
def mon(ceph_cluster):
    m = Mon(ceph_cluster)
    yield m
    m.handle.shutdown()


def pool_detail(mon, name):
    for pool in mon("osd pool ls", detail="detail"):
        if pool["pool_name"] == name:
            return pool
    return None


def pools_snapshot(mon):
    """`osd pool ls detail` without fields that move on their own."""
    out = {}
    for pool in mon("osd pool ls", detail="detail"):
        for key in ("last_change", "pg_num_pending", "last_pg_merge_meta", "pg_num", "pg_placement_num",
                    "snap_seq", "snap_epoch", "removed_snaps", "last_force_op_resend"):
            pool.pop(key, None)
        out[pool["pool_name"]] = json.dumps(pool, sort_keys=True)
    return out


def delete_pool(ceph_module, name):
    res = ceph_module("ceph_pool", {"name": name, "state": "absent", "allow_delete": True})
    assert not res.get("failed"), res


@pytest.fixture
def pool_name(ceph_module):
    name = "hc-t-%s" % uuid.uuid4().hex[:8]
    yield name
    delete_pool(ceph_module, name)
