"""Benchmark (not gating): a no-op ceph_pool run vs the equivalent `ceph` CLI calls, 1 and 20 pools.

Starts its own test-bed cluster (or uses HC_BENCH_CEPH_CONF/HC_BENCH_CEPH_KEYRING if set).
"Module" = the real module process, as Ansible runs it on a host (python -m <module> args.json:
interpreter start + imports + librados connect + reads + JSON out), once per pool.
"CLI" = what ceph-ansible's ceph_pool forks per pool to read a pool's state:
`ceph osd pool ls detail`, `ceph osd pool get P all`, `ceph osd pool application get P`,
`ceph osd pool get-quota P` (all --format json). Run: .venv/bin/python tests/bench/ceph/run.py
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(TESTS))

from testbed import ansible_run  # noqa: E402  pylint: disable=wrong-import-position

POOLS = ["hc-b-%02d" % i for i in range(20)]
SPEC = {"pg_num": 8, "pg_autoscale_mode": "off", "size": 3, "min_size": 2, "application": ["rbd"],
        "max_bytes": 0, "max_objects": 0, "compression_mode": "none"}
REPEATS = 3


def module_run(conn, name):
    payload = {"ANSIBLE_MODULE_ARGS": dict(conn, name=name, **SPEC)}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(payload, fh)
    try:
        res = subprocess.run([ansible_run.PYTHON, "-m", "ansible_collections.hospital.cloud.plugins.modules.ceph_pool",
                              fh.name], capture_output=True, text=True, env=ansible_run.ansible_env(), check=False)
    finally:
        os.unlink(fh.name)
    return json.loads(res.stdout)


def cli_run(conn, name):
    base = ["ceph", "--conf", conn["conf"], "--keyring", conn["keyring"], "--connect-timeout", "10",
            "--format", "json"]
    for args in (["osd", "pool", "ls", "detail"], ["osd", "pool", "get", name, "all"],
                 ["osd", "pool", "application", "get", name], ["osd", "pool", "get-quota", name]):
        subprocess.run(base + args, capture_output=True, check=True)


def timed(fn, conn, pools):
    t0 = time.perf_counter()
    for name in pools:
        fn(conn, name)
    return time.perf_counter() - t0


def main() -> int:
    cluster = None
    if os.environ.get("HC_BENCH_CEPH_CONF"):
        conn = {"conf": os.environ["HC_BENCH_CEPH_CONF"], "keyring": os.environ["HC_BENCH_CEPH_KEYRING"]}
    else:
        from testbed import ceph  # pylint: disable=import-outside-toplevel

        t0 = time.perf_counter()
        cluster = ceph.start()
        print("cluster up in %.1f s" % (time.perf_counter() - t0))
        conn = {"conf": cluster.conf, "keyring": cluster.keyring}
    try:
        for name in POOLS:
            out = module_run(conn, name)
            assert not out.get("failed"), out
        noop = module_run(conn, POOLS[0])
        assert noop["changed"] is False and noop["commands"] == [], noop
        rows = []
        for label, pools in (("1 pool", POOLS[:1]), ("20 pools", POOLS)):
            mod = statistics.median(timed(module_run, conn, pools) for dummy in range(REPEATS))
            cli = statistics.median(timed(cli_run, conn, pools) for dummy in range(REPEATS))
            rows.append((label, len(pools), mod, cli))
        print("no-op ceph_pool run vs equivalent ceph CLI calls (4 forks per pool), median of %d" % REPEATS)
        print("%-9s %10s %12s %12s %12s %8s" % ("", "module s", "module/pool", "CLI s", "CLI/pool", "CLI/mod"))
        for label, n, mod, cli in rows:
            print("%-9s %10.3f %12.3f %12.3f %12.3f %7.1fx" % (label, mod, mod / n, cli, cli / n, cli / mod))
        per_pool = rows[1][2] / rows[1][1]
        print("target < 0.300 s per pool end to end: %s (%.3f s)" % ("met" if per_pool < 0.3 else "MISSED", per_pool))
    finally:
        for name in POOLS:
            payload = dict(conn, name=name, state="absent", allow_delete=True)
            ansible_run.run_module("hospital.cloud.ceph_pool", payload)
        if cluster is not None:
            from testbed import ceph  # pylint: disable=import-outside-toplevel

            ceph.stop(cluster)
    return 0


if __name__ == "__main__":
    sys.exit(main())
