# -*- coding: utf-8 -*-
# Copyright: hospital.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one libvirt connection helper of the collection: connect, look up, and the recorder
(the collection's one :class:`Recorder`) through which every mutating libvirt call goes."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from contextlib import contextmanager

from ansible.module_utils.basic import missing_required_lib
from ansible_collections.hospital.cloud.plugins.module_utils.common.contract import ModuleError, Recorder

try:
    import libvirt
except ImportError:
    libvirt = None

CONNECTION_ARGS = dict(uri=dict(type="str", default="qemu:///system"))


def missing_library():
    """A message when libvirt-python is missing (checked by execute before anything else)."""
    return missing_required_lib("libvirt-python") if libvirt is None else None


def _quiet(_ctx, _err):
    """libvirt prints every error to stderr by default; we report them through exceptions."""


def error_text(exc):
    """The libvirt message of an exception, without the Python noise."""
    get = getattr(exc, "get_error_message", None)
    return (get() if get else None) or str(exc)


@contextmanager
def connect(uri, readonly=False):
    """Yield an open virConnect for uri; close it afterwards. Raises ModuleError, also for a
    libvirt error of a read (a lookup, a listing) in the body: a message, not a traceback."""
    if libvirt is None:
        raise ModuleError("libvirt-python is not importable")
    libvirt.registerErrorHandler(_quiet, None)
    try:
        conn = libvirt.openReadOnly(uri) if readonly else libvirt.open(uri)
    except (libvirt.libvirtError, ValueError, TypeError) as exc:
        raise ModuleError("cannot connect to libvirt at %s: %s" % (uri, error_text(exc)))
    try:
        yield conn
    except libvirt.libvirtError as exc:
        raise ModuleError("libvirt error: %s" % error_text(exc))
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
        raise ModuleError("looking up domain %s: %s" % (name, error_text(exc)))


def _translate(what, exc):
    """A libvirt error of a recorded call -> ModuleError (None: not ours, raised as it is)."""
    if isinstance(exc, libvirt.libvirtError):
        return ModuleError("%s failed: %s" % (what, error_text(exc)))
    if isinstance(exc, (ValueError, TypeError, OverflowError)):
        # raised by the binding for values C cannot take (embedded NUL, out-of-range integers)
        return ModuleError("%s failed: %s" % (what, exc))
    return None


def recorder(check_mode=False):
    """The recorder of one libvirt module run: records each call, makes it unless in check mode."""
    return Recorder(check_mode, _translate)


def method(obj, name, *args):
    """A call of obj.name(*args) for the recorder, resolved only when made (in check mode obj may
    not exist yet: a domain or secret that a recorded define would have created)."""
    return lambda: getattr(obj, name)(*args)


STATE_NAMES = {0: "shutoff", 1: "running", 2: "running", 3: "paused", 4: "running", 5: "shutoff",
               6: "crashed", 7: "pmsuspended"}


def domain_state(dom):
    """'running', 'paused', 'shutoff', 'crashed' or 'pmsuspended'."""
    return STATE_NAMES.get(dom.state()[0], "shutoff")
