# -*- coding: utf-8 -*-
# Copyright: hospital.cloud maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""pacemaker_cib: elements of the Pacemaker CIB, created or updated by id, through Pacemaker's own tools.

Desired vs observed: an element is up to date when every attribute and child it asks for is there with the
same value (children matched by id, or by tag and position when they have none). What Pacemaker or an
operator added beside it (a target-role, a standby attribute) is left alone; a differing element is
replaced as a whole (`cibadmin --replace`). Nothing is deleted unless its id is listed in `absent`.
Node attributes and utilization go through crm_attribute (the node entries are Pacemaker's own).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import subprocess
import xml.etree.ElementTree as ET

from ansible_collections.hospital.cloud.plugins.module_utils.common.contract import ModuleError, Recorder, Result

SECTIONS = ("crm_config", "rsc_defaults", "op_defaults", "resources", "constraints", "fencing-topology")
_ID_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
TIMEOUT = 60


def _cli(*cmd):
    try:
        res = subprocess.run(list(cmd), capture_output=True, text=True, check=False, timeout=TIMEOUT)
    except FileNotFoundError:
        raise ModuleError("%s not found: install Pacemaker's command line tools (pacemaker-cli-utils)" % cmd[0]) from None
    except subprocess.TimeoutExpired:
        raise ModuleError("%s did not answer within %d s: is Pacemaker running here?" % (" ".join(cmd[:3]), TIMEOUT)) from None
    return res


def _checked(*cmd):
    res = _cli(*cmd)
    if res.returncode != 0:
        raise ModuleError("%s failed (rc=%d): %s" % (" ".join(cmd[:3]), res.returncode,
                                                     (res.stderr or res.stdout).strip()))
    return res.stdout


def parse_element(item, index):
    """Validate one desired element {section, xml}; returns (section, element, id)."""
    section = item.get("section")
    if section not in SECTIONS:
        raise ModuleError("elements[%d].section: one of %s, got %r" % (index, ", ".join(SECTIONS), section))
    try:
        el = ET.fromstring(item.get("xml") or "")
    except ET.ParseError as exc:
        raise ModuleError("elements[%d].xml: not well-formed XML (%s)" % (index, exc)) from None
    ident = el.get("id")
    if not ident or not _ID_RE.match(ident):
        raise ModuleError("elements[%d].xml: the top element <%s> needs an id (letters, digits, _ . : -), got %r"
                          % (index, el.tag, ident))
    return section, el, ident


def _children_match(have, want):
    used = set()
    for pos, child in enumerate(list(want)):
        cid = child.get("id")
        if cid:
            match = [i for i, c in enumerate(have) if c.tag == child.tag and c.get("id") == cid]
        else:
            same = [i for i, c in enumerate(have) if c.tag == child.tag]
            rank = [c for c in list(want)[:pos] if c.tag == child.tag and not c.get("id")]
            match = same[len(rank):len(rank) + 1]
        if not match or match[0] in used or not contains(have[match[0]], child):
            return False
        used.add(match[0])
    return True


def contains(have, want):
    """True when `have` holds every attribute and child `want` asks for (see the module docstring)."""
    if have is None or have.tag != want.tag:
        return False
    for key, value in want.attrib.items():
        if have.get(key) != value:
            return False
    if (want.text or "").strip() and (want.text or "").strip() != (have.text or "").strip():
        return False
    return _children_match(list(have), want)


def find(config, ident):
    for el in config.iter():
        if el.get("id") == ident:
            return el
    return None


def query_config():
    text = _checked("cibadmin", "--query", "--scope", "configuration")
    try:
        return ET.fromstring(text)
    except ET.ParseError as exc:
        raise ModuleError("cibadmin --query returned no XML (%s)" % exc) from None


def _node_value(node, name, utilization):
    cmd = ["crm_attribute", "--node", node, "--name", name, "--query", "--quiet"]
    if utilization:
        cmd.append("--utilization")
    else:
        cmd += ["--lifetime", "forever"]
    res = _cli(*cmd)
    return res.stdout.strip() if res.returncode == 0 else None


def _set_node_value(node, name, value, utilization):
    cmd = ["crm_attribute", "--node", node, "--name", name, "--update", str(value)]
    cmd += ["--utilization"] if utilization else ["--lifetime", "forever"]
    _checked(*cmd)


def _node_names(config):
    return set(n.get("uname") for n in config.iter("node") if n.get("uname"))


def _validate_nodes(nodes):
    for node, want in (nodes or {}).items():
        if not _NAME_RE.match(str(node)):
            raise ModuleError("nodes: %r is not a node name" % (node,))
        if not isinstance(want, dict) or set(want) - {"attributes", "utilization"}:
            raise ModuleError("nodes.%s: a dict with attributes and/or utilization" % node)
        for kind in ("attributes", "utilization"):
            for name, value in (want.get(kind) or {}).items():
                if not _NAME_RE.match(str(name)) or isinstance(value, (dict, list)) or value is None:
                    raise ModuleError("nodes.%s.%s: %r=%r is not a name and a plain value" % (node, kind, name, value))


def run(p, check_mode=False, diff=False):
    desired = [parse_element(item, i) for i, item in enumerate(p.get("elements") or [])]
    ids = [ident for _s, _e, ident in desired]
    dup = sorted(set(i for i in ids if ids.count(i) > 1))
    if dup:
        raise ModuleError("elements: id %s given more than once" % ", ".join(dup))
    absent = list(p.get("absent") or [])
    for ident in absent:
        if not _ID_RE.match(str(ident)) or ident in ids:
            raise ModuleError("absent: %r is not an id, or is also among elements" % (ident,))
    _validate_nodes(p.get("nodes"))
    config = query_config()
    rec = Recorder(check_mode)
    created, updated, removed, before, after = [], [], [], [], []
    for section, el, ident in desired:
        have = find(config, ident)
        xml = ET.tostring(el, encoding="unicode")
        if have is None:
            created.append(ident)
            # rsc_defaults, op_defaults and fencing-topology exist only once something is in them
            if config.find(section) is None:
                rec.call("cibadmin --create %s %s" % (section, ident), _checked, "cibadmin", "--create", "--scope",
                         "configuration", "--xml-text", "<%s>%s</%s>" % (section, xml, section))
                config.append(ET.Element(section))
            else:
                rec.call("cibadmin --create %s %s" % (section, ident), _checked, "cibadmin", "--create",
                         "--scope", section, "--xml-text", xml)
            after.append(xml)
        elif not contains(have, el):
            updated.append(ident)
            before.append(ET.tostring(have, encoding="unicode"))
            after.append(xml)
            rec.call("cibadmin --replace %s" % ident, _checked, "cibadmin", "--replace", "--xpath",
                     "//*[@id='%s']" % ident, "--xml-text", xml)
    for ident in absent:
        have = find(config, ident)
        if have is not None:
            removed.append(ident)
            before.append(ET.tostring(have, encoding="unicode"))
            rec.call("cibadmin --delete %s" % ident, _checked, "cibadmin", "--delete", "--xpath", "//*[@id='%s']" % ident)
    known = _node_names(config)
    node_changes = []
    for node, want in sorted((p.get("nodes") or {}).items()):
        if node not in known:
            raise ModuleError("nodes: %s is not a node of this cluster (known: %s)" % (node, ", ".join(sorted(known))))
        for kind in ("attributes", "utilization"):
            for name, value in sorted((want.get(kind) or {}).items()):
                current = _node_value(node, name, kind == "utilization")
                if current != str(value):
                    node_changes.append({"node": node, kind: name, "before": current, "after": str(value)})
                    rec.call("crm_attribute %s %s %s=%s" % (node, kind, name, value), _set_node_value, node, name,
                             value, kind == "utilization")
    changed = bool(rec.calls)
    return Result(changed=changed, calls=rec.calls, created=created, updated=updated, removed=removed,
                  nodes=node_changes,
                  diff={"before": "\n".join(before) + "\n", "after": "\n".join(after) + "\n"} if diff and changed else None)
