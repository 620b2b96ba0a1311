"""Security properties of module_utils/ceph through the real code path (issue #14 items 9, 10, 13)."""

from __future__ import annotations

import os
import stat

import pytest

from ansible_collections.hospital.cloud.plugins.module_utils.common.contract import ModuleError
from ansible_collections.hospital.cloud.plugins.module_utils.ceph import client, key
from ansible_collections.hospital.cloud.plugins.modules import ceph_key, ceph_pool

from refusals import refusal


TEXT = "[client.x]\n\tkey = AQBd4nxmAAAAABAAK3vpdEyO2hhhSDAJEeEX2g==\n"


def _key_params(**args):
    """ceph_key parameters with the module's defaults (as AnsibleModule fills them in)."""
    p = dict((k, v.get("default")) for k, v in ceph_key.argument_spec().items())
    p.update(args)
    return p


def test_new_keyring_is_never_readable_by_others(monkeypatch, tmp_path):
    """Every moment the keyring exists under its name (and as a temporary file), others cannot read it."""
    dest = tmp_path / "ceph.client.x.keyring"
    want = key.desired(_key_params(name="client.x", dest=str(dest), mode="0640"))
    seen = []
    real_rename, real_chmod = os.rename, os.chmod

    def watch_rename(src, dst, *a, **kw):
        seen.append(stat.S_IMODE(os.stat(src).st_mode))
        return real_rename(src, dst, *a, **kw)

    def watch_chmod(path, mode, *a, **kw):
        # the moment after the file is in place and before its mode is set
        seen.append(stat.S_IMODE(os.stat(path).st_mode))
        return real_chmod(path, mode, *a, **kw)

    monkeypatch.setattr(os, "rename", watch_rename)
    monkeypatch.setattr(os, "chmod", watch_chmod)
    old_umask = os.umask(0o022)
    try:
        key.write_keyring(want["file"], TEXT, key.file_mode(want["file"]["mode"]))
    finally:
        os.umask(old_umask)
    assert len(seen) == 2 and all(m & 0o077 == 0 for m in seen), ["%o" % m for m in seen]
    assert stat.S_IMODE(dest.stat().st_mode) == 0o640 and dest.read_text() == TEXT


def test_unknown_group_fails_before_anything_is_written(tmp_path):
    dest = tmp_path / "ceph.client.x.keyring"
    with pytest.raises(ModuleError, match="unknown group 'hc-no-such-group'"):
        key.desired(_key_params(name="client.x", dest=str(dest), group="hc-no-such-group"))
    assert os.listdir(tmp_path) == []


def _pool(**kw):
    from ansible_collections.hospital.cloud.plugins.module_utils.ceph import pool  # noqa: E402

    p = dict((k, v.get("default")) for k, v in ceph_pool.argument_spec().items())
    p.update(name="vms")
    p.update(kw)
    return refusal(pool.validate, p)


@pytest.mark.parametrize("kw,msg", [
    ({"min_size": 1}, "set allow_min_size_one: true"),
    ({"size": 3, "min_size": 1}, "set allow_min_size_one: true"),
    ({"target_size_ratio": float("nan")}, "target_size_ratio must be a number from 0"),
    ({"target_size_ratio": float("inf")}, "target_size_ratio must be a number from 0"),
    ({"target_size_ratio": float("-inf")}, "target_size_ratio must be a number from 0"),
    ({"target_size_ratio": 1e300}, "target_size_ratio must be a number from 0"),
    ({"pg_num": 10 ** 30}, "pg_num must be at most 65536"),
    ({"pgp_num": 65537}, "pgp_num must be at most 65536"),
    ({"max_bytes": 2 ** 70}, "max_bytes must be at most"),
    ({"max_objects": 2 ** 63}, "max_objects must be at most"),
    ({"min_size": 11}, "min_size must be at most 10"),
])
def test_pool_refuses_unsafe_and_out_of_range_values(kw, msg):
    assert msg in (_pool(**kw) or ""), kw


@pytest.mark.parametrize("kw", [
    {"min_size": 1, "allow_min_size_one": True}, {"size": 1, "min_size": 1, "allow_size_one": True},
    {"min_size": 2}, {"target_size_ratio": 0.2}, {"pg_num": 65536}, {"max_bytes": 2 ** 63 - 1},
])
def test_pool_accepts_opted_in_and_in_range_values(kw):
    assert _pool(**kw) is None


def _key(**kw):
    p = _key_params(client="client.admin")
    p.update(kw)
    return refusal(key.validate, p)


@pytest.mark.parametrize("name", ["client.admin", "client.bootstrap-osd", "client.bootstrap-rbd", "mon.a",
                                  "mgr.x", "osd.0", "mds.a", "client.hc-ops"])
def test_key_absent_on_admin_entities_needs_opt_in(name):
    msg = _key(name=name, state="absent", client="client.hc-ops")
    assert msg and "allow_admin_delete: true" in msg
    assert _key(name=name, state="absent", client="client.hc-ops", allow_admin_delete=True) is None


def test_key_absent_on_ordinary_entity_needs_no_opt_in():
    assert _key(name="client.imaging-old", state="absent") is None
    assert _key(name="client.admin", state="present") is None


def test_key_caps_with_control_characters_refused():
    assert "control characters" in _key(name="client.x", caps={"mon": "profile rbd\nallow *"})


def test_connect_timeout_bounds():
    for value in (0, 10 ** 30):
        with pytest.raises(ModuleError, match="connect_timeout must be a number of seconds from 1 to 3600"):
            client.CephClient(connect_timeout=value).connect()
