"""The worker's package metadata (pyproject.toml): what the wheel declares to hold exists."""

from __future__ import annotations

import tomllib

from imaging_helpers import PKG_ROOT


def test_declared_package_data_exists():
    """Every data pattern pyproject.toml declares matches files (the wheel holds what the worker needs)."""
    tool = tomllib.loads((PKG_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    for package, patterns in tool.get("package-data", {}).items():
        for pattern in patterns:
            assert list((PKG_ROOT / package.replace(".", "/")).glob(pattern)), "%s: %s matches nothing" % (package, pattern)
    assert tool.get("include-package-data") is False, "only the declared files, not whatever lies in the packages"
