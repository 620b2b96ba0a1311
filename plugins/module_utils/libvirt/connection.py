# -*- coding: utf-8 -*-
# Copyright: hospital.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one libvirt connection helper of the collection."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import traceback
from contextlib import contextmanager

from ansible.module_utils.basic import missing_required_lib
from ansible_collections.hospital.cloud.plugins.module_utils.libvirt.errors import LibvirtModuleError

try:
    import libvirt
except ImportError:
    libvirt = None
    LIBVIRT_IMPORT_ERROR = traceback.format_exc()
else:
    LIBVIRT_IMPORT_ERROR = None

HAS_LIBVIRT = libvirt is not None

CONNECTION_ARGS = dict(uri=dict(type="str", default="qemu:///system"))


def execute(module, fn, **kwargs):
    """Run fn(module.params, **kwargs) for a libvirt module: the one place that turns a missing
    libvirt-python or a LibvirtModuleError into fail_json and a result into exit_json."""
    if not HAS_LIBVIRT:
        module.fail_json(msg=missing_required_lib("libvirt-python"), exception=LIBVIRT_IMPORT_ERROR)
    try:
        result = fn(module.params, **kwargs)
    except LibvirtModuleError as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    except libvirt.libvirtError as exc:
        # a libvirt call outside call() (a lookup, a listing): still a message, not a traceback
        module.fail_json(msg="libvirt error: %s" % error_text(exc))
    module.exit_json(**result)


def _quiet(_ctx, _err):
    """libvirt prints every error to stderr by default; we report them through exceptions."""


def error_text(exc):
    """The libvirt message of an exception, without the Python noise."""
    get = getattr(exc, "get_error_message", None)
    return (get() if get else None) or str(exc)


@contextmanager
def connect(uri, readonly=False):
    """Yield an open virConnect for uri; close it afterwards. Raises LibvirtModuleError."""
    if libvirt is None:
        raise LibvirtModuleError("libvirt-python is not importable")
    libvirt.registerErrorHandler(_quiet, None)
    try:
        conn = libvirt.openReadOnly(uri) if readonly else libvirt.open(uri)
    except (libvirt.libvirtError, ValueError, TypeError) as exc:
        raise LibvirtModuleError("cannot connect to libvirt at %s: %s" % (uri, error_text(exc)))
    try:
        yield conn
    finally:
        try:
            conn.close()
        except libvirt.libvirtError:
            pass


def lookup_domain(conn, name):
    """The virDomain called name, or None."""
    try:
        return conn.lookupByName(name)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            return None
        raise LibvirtModuleError("looking up domain %s: %s" % (name, error_text(exc)))


def call(calls, what, fn, *args):
    """Run one libvirt API call, record it in `calls`, turn libvirt errors into LibvirtModuleError."""
    calls.append(what)
    try:
        return fn(*args)
    except libvirt.libvirtError as exc:
        raise LibvirtModuleError("%s failed: %s" % (what, error_text(exc)), calls=list(calls))
    except (ValueError, TypeError, OverflowError) as exc:
        # raised by the binding for values C cannot take (embedded NUL, out-of-range integers)
        raise LibvirtModuleError("%s failed: %s" % (what, exc), calls=list(calls))


STATE_NAMES = {0: "shutoff", 1: "running", 2: "running", 3: "paused", 4: "running", 5: "shutoff",
               6: "crashed", 7: "pmsuspended"}


def domain_state(dom):
    """'running', 'paused', 'shutoff', 'crashed' or 'pmsuspended'."""
    return STATE_NAMES.get(dom.state()[0], "shutoff")
