"""libvirt_secret (cephx) and a domain with an RBD disk against the real Ceph test cluster."""

from __future__ import annotations

import base64
import os
import uuid

import pytest
from conftest import FQCN, host_snapshot, validate, virsh  # pylint: disable=no-name-in-module

pytestmark = [pytest.mark.libvirt, pytest.mark.timeout(300)]
SECRET = "hospital.cloud.libvirt_secret"


@pytest.fixture
def secret_uuid(libvirt_uri):
    value = str(uuid.uuid4())
    yield value
    virsh(libvirt_uri, "secret-undefine", value, check=False)


def test_secret_is_idempotent_and_rotation_is_detected(run_module, libvirt_uri, secret_uuid):
    usage = "hc-test-%s" % secret_uuid[:8]
    key1, key2 = base64.b64encode(os.urandom(16)).decode(), base64.b64encode(os.urandom(16)).decode()
    # private: false only so the test can read the value back (the RBD test uses the private default)
    args = {"uri": libvirt_uri, "usage": usage, "uuid": secret_uuid, "value": key1, "private": False}
    runs = [run_module(SECRET, args, check=check, diff=True) for check in (True, False, True, False)]
    assert [r["changed"] for r in runs] == [True, True, False, False], [r.get("msg") for r in runs]
    assert runs[0]["calls"] == runs[1]["calls"] == ["secretDefineXML", "setValue", "secretDefineXML"]
    assert key1 not in str(runs) and "sha256" not in str(runs[1]["diff"])
    assert base64.b64decode(virsh(libvirt_uri, "secret-get-value", secret_uuid).strip()) == base64.b64decode(key1)
    rotated = [run_module(SECRET, dict(args, value=key2), check=check) for check in (True, False, False)]
    assert [r["changed"] for r in rotated] == [True, True, False]
    assert rotated[1]["changes"] == [{"action": "set_value", "reason": "value differs (digest in the description)"}]
    assert base64.b64decode(virsh(libvirt_uri, "secret-get-value", secret_uuid).strip()) == base64.b64decode(key2)
    # another secret may not take the same usage; bad keys fail; neither changes the host
    before = host_snapshot(libvirt_uri)
    clash = run_module(SECRET, dict(args, uuid=str(uuid.uuid4())))
    assert clash["failed"] and "already has usage ceph" in clash["msg"]
    bad = run_module(SECRET, dict(args, value="not base64!"))
    assert bad["failed"] and "not base64" in bad["msg"] and "not base64!" not in bad["msg"]
    missing = run_module(SECRET, {"uri": libvirt_uri, "usage": usage})
    assert missing["failed"] and "value" in missing["msg"]
    assert host_snapshot(libvirt_uri) == before
    gone = [run_module(SECRET, dict(args, state="absent"), check=check) for check in (True, False, False)]
    assert [r["changed"] for r in gone] == [True, True, False]


def test_domain_with_rbd_disk_defines_and_starts(run_module, ceph_cluster, libvirt_uri,  # pylint: disable=too-many-locals
                                                 libvirt_domain_type, domain_name, secret_uuid, tmp_path):
    import rbd  # pylint: disable=import-outside-toplevel

    pool, image, user = "hc-test-vms", domain_name + "-root", "client.hc-test-libvirt"
    ceph_cluster.cli("osd", "pool", "create", pool, "8")
    ceph_cluster.cli("osd", "pool", "application", "enable", pool, "rbd")
    cluster = ceph_cluster.rados()
    try:
        with cluster.open_ioctx(pool) as ioctx:
            rbd.RBD().create(ioctx, image, 64 * 1024 * 1024)
        ceph_cluster.cli("auth", "get-or-create", user, "mon", "profile rbd", "osd", "profile rbd pool=%s" % pool)
        key = ceph_cluster.cli("auth", "get-key", user).strip()
        sec = run_module(SECRET, {"uri": libvirt_uri, "usage": "%s secret" % user, "uuid": secret_uuid, "value": key})
        assert sec["changed"] and not sec.get("failed"), sec
        disk = {"type": "rbd", "pool": pool, "image": image, "monitors": [ceph_cluster.mon_host],
                "user": user, "secret_uuid": secret_uuid, "target": "vda", "cache": "none"}
        args = {"name": domain_name, "uri": libvirt_uri, "domain_type": libvirt_domain_type, "vcpus": 1,
                "memory": 64, "machine": "pc", "shutdown_timeout": 0, "state": "running", "disks": [disk]}
        res = run_module(FQCN, args, diff=True)
        assert not res.get("failed") and res["changed"], res.get("msg")
        validate(res["xml"], tmp_path)
        assert virsh(libvirt_uri, "domstate", domain_name).strip() == "running"
        assert "%s/%s" % (pool, image) in virsh(libvirt_uri, "domblklist", domain_name, "--details")
        assert run_module(FQCN, args)["changed"] is False
        # qemu opened the image with the cephx key: it holds a watch on the image header
        with cluster.open_ioctx(pool) as ioctx:
            with rbd.Image(ioctx, image, read_only=True) as img:
                assert img.watchers_list() and len(list(img.watchers_list())) >= 1
        # absent never removes RBD storage, even with remove_storage
        gone = run_module(FQCN, dict(args, state="absent", remove_storage=True))
        assert gone["changed"] and [c["action"] for c in gone["changes"]] == ["stop", "undefine"]
        with cluster.open_ioctx(pool) as ioctx:
            assert image in rbd.RBD().list(ioctx)
    finally:
        virsh(libvirt_uri, "destroy", domain_name, check=False)
        cluster.shutdown()
        ceph_cluster.cli("auth", "del", user, check=False)
        ceph_cluster.cli("osd", "pool", "rm", pool, pool, "--yes-i-really-really-mean-it", check=False)


def test_secret_lookup_libvirt_error_fails_cleanly(run_module, libvirt_uri):
    """Issue #14 item 13: a libvirt error while looking up secrets (here: a driver without secrets)
    is a message, not a traceback; nothing changes on the real libvirtd either."""
    before = host_snapshot(libvirt_uri)
    key = base64.b64encode(os.urandom(16)).decode()
    res = run_module("hospital.cloud.libvirt_secret",
                     {"uri": "test:///default", "usage": "client.hc-t secret", "value": key})
    assert res["failed"] and "listing the libvirt secrets failed" in res["msg"], res
    assert "Traceback" not in res["_stderr"] + res["msg"] and key not in str(res)
    res = run_module("hospital.cloud.libvirt_secret",
                     {"uri": libvirt_uri, "usage": "client.hc-t\u0000secret", "value": key})
    assert res["failed"] and "usage: contains the control character U+0000" in res["msg"], res
    assert "Traceback" not in res["_stderr"]
    assert host_snapshot(libvirt_uri) == before
