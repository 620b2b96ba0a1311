"""Issue #15: every module's RETURN documentation against what the module really returns.

Each module runs for real (run_module: the module file, as on a host) against the test bed's Ceph
cluster or libvirtd, in check mode and for real, creating and removing. Every key a run returns
must be documented (with the documented type), every key documented as ``returned: always`` must
be in every run, every documented key must be returned by at least one run, and every module
returns the contract's ``changed`` and ``calls``.
"""

from __future__ import annotations

import importlib
import uuid

import pytest
import yaml

# keys Ansible itself adds to results (not part of a module's RETURN)
ANSIBLE_KEYS = {"changed", "failed", "msg", "invocation", "warnings", "deprecations", "diff", "_stderr"}
CONTRACT = {"changed", "calls"}
TYPES = {"str": str, "list": list, "dict": dict, "bool": bool, "int": int, "float": float}
KEY = "AQBd4nxmAAAAABAAK3vpdEyO2hhhSDAJEeEX2g=="


def documented(module):
    mod = importlib.import_module("ansible_collections.hospital.cloud.plugins.modules." + module)
    return yaml.safe_load(mod.RETURN)


def assert_returns_match_docs(module, results):
    doc = documented(module)
    always = {k for k, v in doc.items() if v.get("returned") == "always"}
    seen = set()
    for res in results:
        assert not res.get("failed"), res
        assert CONTRACT <= set(res), "%s: the contract's %s missing from %s" % (module, CONTRACT, sorted(res))
        keys = set(res) - ANSIBLE_KEYS
        assert keys <= set(doc), "%s returns undocumented %s" % (module, sorted(keys - set(doc)))
        assert always <= keys, "%s documents as always returned, but did not return %s" % (
            module, sorted(always - keys))
        for k in keys:
            want = TYPES[doc[k]["type"]]
            assert res[k] is None or isinstance(res[k], want), (module, k, res[k], doc[k]["type"])
        seen |= keys
    assert "calls" in doc, "%s: calls not documented" % module
    assert seen == set(doc), "%s documents %s, never returned" % (module, sorted(set(doc) - seen))


@pytest.fixture
def uid():
    return uuid.uuid4().hex[:8]


@pytest.mark.ceph
def test_ceph_modules_return_what_they_document(run_module, ceph_cluster, uid, tmp_path):
    conn = {"conf": ceph_cluster.conf, "keyring": ceph_cluster.keyring, "client": ceph_cluster.client}

    def run(module, args, check=False, diff=False):
        return run_module("hospital.cloud." + module, dict(conn, **args), check=check, diff=diff)

    pool = {"name": "hc-t-rd-" + uid, "pg_num": 8, "pg_autoscale_mode": "off", "application": ["rbd"]}
    image = {"pool": pool["name"], "name": "disk", "size": "8M"}
    key = {"name": "client.hc-t-rd-" + uid, "caps": {"mon": "allow r"}, "dest": str(tmp_path / "k.keyring")}
    pools, images, keys, infos = [], [], [], []
    try:
        pools += [run("ceph_pool", pool, check=True, diff=True), run("ceph_pool", pool, diff=True)]
        images += [run("rbd_image", image, check=True), run("rbd_image", image, diff=True)]
        gather = ["health", "osd_tree", "osd_dump", "pools", "monitors", "quorum", "images"]
        infos += [run("ceph_info", {"gather": gather, "pool": pool["name"]}, check=True),
                  run("ceph_info", {"gather": gather, "pool": pool["name"]}), run("ceph_info", {})]
        images.append(run("rbd_image", dict(image, state="absent", allow_delete=True)))
        keys += [run("ceph_key", key, check=True, diff=True), run("ceph_key", dict(key, _ansible_no_log=True)),
                 run("ceph_key", dict(key, state="absent"))]
        pools.append(run("ceph_pool", dict(pool, state="absent", allow_delete=True)))
    finally:
        run("ceph_key", dict(key, state="absent"))
        run("rbd_image", dict(image, state="absent", allow_delete=True))
        run("ceph_pool", dict(pool, state="absent", allow_delete=True))
    assert keys[1]["key"], keys[1]  # only with no_log
    assert_returns_match_docs("ceph_pool", pools)
    assert_returns_match_docs("rbd_image", images)
    assert_returns_match_docs("ceph_key", keys)
    assert infos[1]["images"][0]["name"] == "disk", infos[1]
    assert_returns_match_docs("ceph_info", infos)


@pytest.mark.libvirt
def test_libvirt_modules_return_what_they_document(run_module, libvirt_uri, libvirt_domain_type, uid):
    dom = {"name": "hc-test-rd-" + uid, "uri": libvirt_uri, "domain_type": libvirt_domain_type, "vcpus": 1,
           "memory": 64, "machine": "pc", "shutdown_timeout": 0, "state": "running"}
    sec = {"uri": libvirt_uri, "usage": "client.hc-t-rd-%s secret" % uid, "value": KEY}
    domains, secrets, infos = [], [], []
    try:
        domains += [run_module("hospital.cloud.libvirt_domain", dom, check=True, diff=True),
                    run_module("hospital.cloud.libvirt_domain", dom, diff=True)]
        infos.append(run_module("hospital.cloud.libvirt_domain_info", {"uri": libvirt_uri, "names": [dom["name"]]}))
        domains.append(run_module("hospital.cloud.libvirt_domain", dict(dom, state="absent")))
        secrets += [run_module("hospital.cloud.libvirt_secret", sec, check=True, diff=True),
                    run_module("hospital.cloud.libvirt_secret", sec, diff=True),
                    run_module("hospital.cloud.libvirt_secret", dict(sec, state="absent", value=None))]
    finally:
        run_module("hospital.cloud.libvirt_domain", dict(dom, state="absent"))
        run_module("hospital.cloud.libvirt_secret", dict(sec, state="absent", value=None))
    assert_returns_match_docs("libvirt_domain", domains)
    assert_returns_match_docs("libvirt_secret", secrets)
    assert_returns_match_docs("libvirt_domain_info", infos)


@pytest.mark.ceph
def test_rbd_mirror_returns_what_it_documents(run_module, ceph_cluster, uid):
    """One cluster is enough for the keys: the pool in image mode, an image mirrored with a schedule, a bootstrap
    token (returned only under no_log). The two-cluster behaviour is make test-dr."""
    conn = {"conf": ceph_cluster.conf, "keyring": ceph_cluster.keyring, "client": ceph_cluster.client}

    def run(module, args, check=False):
        return run_module("hospital.cloud." + module, dict(conn, **args), check=check)

    pool = {"name": "hc-t-rm-" + uid, "pg_num": 8, "pg_autoscale_mode": "off", "application": ["rbd"]}
    mirror = {"pool": pool["name"], "site_name": "site-a", "images": ["disk"], "schedule_interval": "1m"}
    runs = []
    try:
        assert not run("ceph_pool", pool).get("failed")
        assert not run("rbd_image", {"pool": pool["name"], "name": "disk", "size": "8M"}).get("failed")
        runs += [run("rbd_mirror", mirror, check=True), run("rbd_mirror", mirror), run("rbd_mirror", mirror),
                 run("rbd_mirror", {"pool": pool["name"], "peer_token_create": True, "_ansible_no_log": True})]
    finally:
        run("ceph_pool", dict(pool, state="absent", allow_delete=True))
    assert runs[0]["changed"] and runs[1]["changed"] and not runs[2]["changed"], runs[2]["calls"]
    assert runs[3]["peer_token"], "no token under no_log"
    assert_returns_match_docs("rbd_mirror", runs)
