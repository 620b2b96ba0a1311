"""Security properties of module_utils/ceph through the real code path (issue #14 items 9, 10, 13)."""

from __future__ import annotations

import json
import os
import stat

import pytest

from ansible.module_utils import basic
from ansible_collections.hospital.cloud.plugins.module_utils.ceph import client, key


def _module(monkeypatch, **args):
    """A real AnsibleModule with the ceph_key argument spec (as the module builds it)."""
    spec = key.argument_spec()
    spec.update(client.connection_argument_spec())
    monkeypatch.setattr(basic, "_ANSIBLE_ARGS", json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode())
    monkeypatch.setattr(basic, "_ANSIBLE_PROFILE", "legacy", raising=False)
    return basic.AnsibleModule(argument_spec=spec, supports_check_mode=True)


TEXT = "[client.x]\n\tkey = AQBd4nxmAAAAABAAK3vpdEyO2hhhSDAJEeEX2g==\n"


def test_new_keyring_is_never_readable_by_others(monkeypatch, tmp_path):
    """Every moment the keyring exists under its name (and as a temporary file), others cannot read it."""
    dest = tmp_path / "ceph.client.x.keyring"
    module = _module(monkeypatch, name="client.x", dest=str(dest), mode="0600")
    seen = []
    real_set = module.set_fs_attributes_if_different

    def watch(file_args, changed, *a, **kw):
        # the moment after the file is in place and before its mode/owner are set
        seen.append(stat.S_IMODE(os.stat(file_args["path"]).st_mode))
        return real_set(file_args, changed, *a, **kw)

    real_rename = os.rename

    def watch_rename(src, dst, *a, **kw):
        seen.append(stat.S_IMODE(os.stat(src).st_mode))
        return real_rename(src, dst, *a, **kw)

    monkeypatch.setattr(module, "set_fs_attributes_if_different", watch)
    monkeypatch.setattr(os, "rename", watch_rename)
    old_umask = os.umask(0o022)
    try:
        assert key._write_keyring(module, module.params, TEXT) is True
    finally:
        os.umask(old_umask)
    assert seen and all(m & 0o077 == 0 for m in seen), ["%o" % m for m in seen]
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600 and dest.read_text() == TEXT


def test_unknown_group_fails_before_anything_is_written(monkeypatch, tmp_path):
    dest = tmp_path / "ceph.client.x.keyring"
    module = _module(monkeypatch, name="client.x", dest=str(dest), group="hc-no-such-group")
    with pytest.raises(client.CephError, match="unknown group 'hc-no-such-group'"):
        key._write_keyring(module, module.params, TEXT)
    assert os.listdir(tmp_path) == []
