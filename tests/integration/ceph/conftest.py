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


# Pool flags the monitors set on their own (quota reached, PGs being created, fullness).
_MON_OWNED_FLAGS = {"creating", "full", "full_quota", "nearfull", "backfillfull"}


def pools_snapshot(mon):
    """`osd pool ls detail` without fields that move on their own.

    The mgr's pg_autoscaler rewrites pg_num_target/pg_placement_num_target of any pool whose mode is
    "on" whenever the pool set changes (every test in the session creates and deletes pools), so
    those two count only for pools with the autoscaler off.
    """
    out = {}
    for pool in mon("osd pool ls", detail="detail"):
        for key in ("last_change", "pg_num_pending", "last_pg_merge_meta", "pg_num", "pg_placement_num",
                    "snap_seq", "snap_epoch", "removed_snaps", "last_force_op_resend", "flags"):
            pool.pop(key, None)
        if pool.get("pg_autoscale_mode") == "on":
            pool.pop("pg_num_target", None)
            pool.pop("pg_placement_num_target", None)
        pool["flags_names"] = sorted(set(pool.get("flags_names", "").split(",")) - _MON_OWNED_FLAGS - {""})
        out[pool["pool_name"]] = pool
    return out


def snapshot_changes(before, after):
    """What differs between two snapshots, one readable line per field (pools, auth, ...)."""
    changes = []
    for part, (old, new) in enumerate(zip(before, after)):
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            for name in sorted(set(old) | set(new)):
                if name not in old or name not in new:
                    changes.append("part %d: %s %s" % (part, name, "added" if name in new else "removed"))
                    continue
                for key in sorted(set(old[name]) | set(new[name])):
                    if old[name].get(key) != new[name].get(key):
                        was, now = old[name].get(key), new[name].get(key)
                        changes.append("part %d: %s.%s: %r -> %r" % (part, name, key, was, now))
        else:
            changes.append("part %d: %r -> %r" % (part, old, new))
    return changes


def delete_pool(ceph_module, name):
    res = ceph_module("ceph_pool", {"name": name, "state": "absent", "allow_delete": True})
    assert not res.get("failed"), res


@pytest.fixture
def pool_name(ceph_module):
    name = "hc-t-%s" % uuid.uuid4().hex[:8]
    yield name
    delete_pool(ceph_module, name)
