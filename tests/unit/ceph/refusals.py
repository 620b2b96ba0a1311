"""Shared by the Ceph unit tests: what a module's validate() says when it refuses its parameters."""

from __future__ import annotations

from ansible_collections.hospital.cloud.plugins.module_utils.common.contract import ModuleError


def refusal(validate, p):
    """The message validate() raises for p (None when it accepts p)."""
    try:
        validate(p)
    except ModuleError as exc:
        return exc.msg
    return None
