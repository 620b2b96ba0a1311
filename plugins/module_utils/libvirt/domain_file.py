# -*- coding: utf-8 -*-
# Copyright: hospital.cloud maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""libvirt_domain_xml: the domain XML of libvirt_domain's parameters, written to a file.

A cluster manager (Pacemaker's VirtualDomain) starts a VM from such a file on whichever host it picks, so
the same file must be on every host and no host may hold a persistent definition of its own. The XML is
rendered by the code libvirt_domain uses, with stable MACs, so the guest looks the same on every host.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import tempfile
import xml.etree.ElementTree as ET

from ansible_collections.hospital.cloud.plugins.module_utils.common.contract import ModuleError, Recorder, Result
from ansible_collections.hospital.cloud.plugins.module_utils.libvirt import domain_spec, domain_xml


def _mode(value):
    try:
        mode = int(str(value), 8)
    except ValueError:
        raise ModuleError("mode: an octal mode such as '0640', got %r" % (value,)) from None
    if mode & 0o007:
        raise ModuleError("mode: the domain XML names its disks' secrets; no access for others (got %s)" % value)
    return mode


def render(p):
    """The XML text the file must hold (raises ModuleError on bad input)."""
    spec = domain_spec.desired_spec(dict(p, state="present"))
    domain_spec.assign_macs(spec, None)
    # one element per line: Pacemaker's VirtualDomain finds the name with a line-based grep of <name>
    dom = ET.fromstring(domain_xml.render(spec))
    ET.indent(dom)
    return ET.tostring(dom, encoding="unicode") + "\n"


def _write(path, text, mode):
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".hc-domain-")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def run(p, check_mode=False, diff=False):
    path = p["path"]
    if not os.path.isabs(path):
        raise ModuleError("path: needs an absolute path, got %r" % path)
    if not os.path.isdir(os.path.dirname(path)):
        raise ModuleError("path: directory %s does not exist" % os.path.dirname(path))
    mode = _mode(p.get("mode") or "0640")
    text = render(p)
    before = None
    before_mode = None
    if os.path.exists(path):
        with open(path) as handle:
            before = handle.read()
        before_mode = os.stat(path).st_mode & 0o7777
    rec = Recorder(check_mode, translate=lambda what, exc: ModuleError("%s: %s" % (what, exc)))
    if before != text or before_mode != mode:
        rec.call("write %s" % path, _write, path, text, mode)
    changed = bool(rec.calls)
    out = Result(changed=changed, calls=rec.calls, path=path, name=p["name"],
                 diff={"before": before or "", "after": text, "before_header": path, "after_header": path}
                 if diff and changed else None)
    return out
