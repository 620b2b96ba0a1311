"""Every role has meta/argument_specs.yml whose options equal its defaults (names and values)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROLES = sorted(p for p in (Path(__file__).resolve().parents[3] / "roles").iterdir() if (p / "tasks").is_dir())


def test_there_are_roles():
    assert ROLES


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_argument_specs_match_defaults(role):
    specs = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
    defaults_file = role / "defaults" / "main.yml"
    defaults = yaml.safe_load(defaults_file.read_text()) if defaults_file.exists() else {}
    defaults = defaults or {}
    prefix = role.name + "_"
    assert all(k.startswith(prefix) for k in specs), "options must be prefixed %s" % prefix
    assert all(k.startswith(prefix) for k in defaults), "defaults must be prefixed %s" % prefix
    missing_defaults = [k for k, v in specs.items() if not v.get("required") and "default" in v and k not in defaults]
    assert not missing_defaults
    undocumented = sorted(set(defaults) - set(specs))
    assert not undocumented, "defaults without argument spec: %s" % undocumented
    for key, value in defaults.items():
        if value is None:
            assert "default" not in specs[key], key
        else:
            assert specs[key].get("default") == value, "%s: spec default %r != defaults %r" % (
                key, specs[key].get("default"), value)
