# -*- coding: utf-8 -*-
# Copyright: hospital.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""libvirt_domain: desired spec + observed domain -> planned actions -> (unless check mode) applied.

`plan()` is pure and the only place deciding what happens; check mode returns its actions and
the calls they would make, a real run makes exactly those calls.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import time

from ansible_collections.hospital.cloud.plugins.module_utils.libvirt import connection as lv
from ansible_collections.hospital.cloud.plugins.module_utils.libvirt import domain_spec, domain_xml
from ansible_collections.hospital.cloud.plugins.module_utils.libvirt.errors import LibvirtModuleError

# fields that change nothing the guest sees, or that the guest itself changes at run time
LIVE_IGNORED = ("metadata", "current_memory", "vcpus_current")
# options without a default: none given means "manage the run state only"
DEFINITION_KEYS = ("vcpus", "memory", "cpu", "machine", "boot", "disks", "interfaces", "serial_log", "metadata",
                   "extra_devices", "uuid")


def _secure_flag():
    return getattr(lv.libvirt, "VIR_DOMAIN_XML_SECURE", 1)


def _masked_value(change, key):
    return domain_spec.MASK if change["field"] == "graphics_password" and change[key] else change[key]


def plan(want, observed, spec_changes, restart_on_change=False, remove_storage=False):
    """Ordered actions from observed {'exists','state','active','autostart'} to `want` (params subset)."""
    state = want["state"]
    steps = []
    if state == "absent":
        if not observed["exists"]:
            return steps
        if observed["active"]:
            # the same graceful path as state=shutoff: ACPI shutdown, power off only after shutdown_timeout
            steps.append({"action": "stop", "reason": "absent"})
        steps.append({"action": "undefine"})
        if remove_storage and observed.get("files"):
            steps.append({"action": "remove_storage", "paths": list(observed["files"])})
        return steps
    if not observed["exists"] or spec_changes:
        steps.append({"action": "define", "fields": [c["field"] for c in spec_changes]})
    run = observed["state"] if observed["active"] else "shutoff"
    run = "running" if run == "pmsuspended" else run
    target = run if state == "present" else state
    if observed["active"] and spec_changes and restart_on_change and target != "shutoff":
        steps.append({"action": "stop", "reason": "restart_on_change"})
        run = "shutoff"
    if target != run:
        steps.append({"action": {("shutoff", "running"): "start", ("paused", "running"): "resume",
                                 ("shutoff", "paused"): "start_paused", ("running", "paused"): "suspend"}
                      .get((run, target), "stop")})
    if want.get("autostart") is not None and bool(want["autostart"]) != bool(observed.get("autostart")):
        steps.append({"action": "autostart", "value": bool(want["autostart"])})
    return steps


def _state_only(p):
    return all(p.get(k) in (None, [], {}) for k in DEFINITION_KEYS)


def observe(conn, name, wanted_extras):
    dom = lv.lookup_domain(conn, name)
    if dom is None:
        return {"exists": False, "state": "absent", "active": False, "autostart": False, "files": []}, None
    # SECURE: the console password is only in the XML with it; without it a set password would
    # look absent and be "changed" on every run
    xml = dom.XMLDesc(lv.libvirt.VIR_DOMAIN_XML_INACTIVE | _secure_flag())
    spec, uuid = domain_xml.parse(xml, wanted_extras)
    active = bool(dom.isActive())
    obs = {"exists": True, "state": lv.domain_state(dom), "active": active, "autostart": bool(dom.autostart()),
           "uuid": uuid, "spec": spec, "dom": dom,
           "files": [d["path"] for d in spec["disks"] if d["type"] == "file" and d["device"] == "disk"]}
    if active:
        obs["live_spec"] = domain_xml.parse(dom.XMLDesc(_secure_flag()), wanted_extras)[0]
    return obs, dom


def _stop(dom, calls, timeout):
    """ACPI shutdown, wait up to `timeout` s, then power off (destroy) if the guest still runs.
    A paused guest cannot react to ACPI and is powered off at once (as check mode predicts)."""
    if timeout > 0 and dom.isActive() and lv.domain_state(dom) == "running":
        lv.call(calls, "shutdown", dom.shutdown)
        deadline = time.monotonic() + timeout
        while dom.isActive() and time.monotonic() < deadline:
            time.sleep(0.5)
    if dom.isActive():
        lv.call(calls, "destroy", dom.destroy)


def _undefine(dom, calls):
    flags = 0
    for flag in ("VIR_DOMAIN_UNDEFINE_MANAGED_SAVE", "VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA",
                 "VIR_DOMAIN_UNDEFINE_NVRAM", "VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA"):
        flags |= getattr(lv.libvirt, flag, 0)
    try:
        dom.undefineFlags(flags)
        calls.append("undefineFlags")
    except lv.libvirt.libvirtError as exc:
        if "unsupported flags" not in lv.error_text(exc):
            raise LibvirtModuleError("undefineFlags failed: %s" % lv.error_text(exc), calls=list(calls))
        lv.call(calls, "undefineFlags", dom.undefine)  # drivers without these flags (the test driver)


def _remove_files(conn, paths, calls):
    for path in paths:
        try:
            vol = conn.storageVolLookupByPath(path)
        except lv.libvirt.libvirtError:
            vol = None
        if vol is not None:
            lv.call(calls, "remove(%s)" % path, vol.delete, 0)  # a volume of a storage pool
        elif os.path.exists(path):
            calls.append("remove(%s)" % path)
            try:
                os.unlink(path)
            except OSError as exc:
                raise LibvirtModuleError("remove_storage: cannot remove %s: %s" % (path, exc), calls=list(calls))


def _start_paused(dom, calls):
    try:
        dom.createWithFlags(lv.libvirt.VIR_DOMAIN_START_PAUSED)
        calls.append("createWithFlags")
    except lv.libvirt.libvirtError as exc:
        if "unsupported flags" not in lv.error_text(exc):
            raise LibvirtModuleError("createWithFlags failed: %s" % lv.error_text(exc), calls=list(calls))
        # drivers without VIR_DOMAIN_START_PAUSED (the test driver): start, then pause at once
        lv.call(calls, "createWithFlags", dom.createWithFlags, 0)
        lv.call(calls, "suspend (start paused unsupported)", dom.suspend)


def apply(conn, dom, steps, xml, p, calls):
    """Run the planned steps; returns the domain (new after a define)."""
    for step in steps:
        action = step["action"]
        if action == "define":
            dom = lv.call(calls, "defineXML", conn.defineXML, xml)
        elif action == "destroy":
            lv.call(calls, "destroy", dom.destroy)
        elif action == "undefine":
            _undefine(dom, calls)
        elif action == "remove_storage":
            _remove_files(conn, step["paths"], calls)
        elif action == "stop":
            _stop(dom, calls, _stop_timeout(p))
        elif action == "start":
            lv.call(calls, "createWithFlags", dom.createWithFlags, 0)
        elif action == "start_paused":
            _start_paused(dom, calls)
        elif action == "resume":
            lv.call(calls, "resume", dom.resume)
        elif action == "suspend":
            lv.call(calls, "suspend", dom.suspend)
        elif action == "autostart":
            lv.call(calls, "setAutostart(%d)" % step["value"], dom.setAutostart, int(step["value"]))
    return dom


CONDITIONAL_DESTROY = "destroy if still running after %d s"


def predicted_matches(predicted, real):
    """A real run's calls are the prediction with each conditional destroy either made
    ("destroy") or not needed (absent): the rule check mode is held to."""
    if not predicted:
        return not real
    head, rest = predicted[0], predicted[1:]
    if head.startswith("destroy if still running after "):
        return (bool(real) and real[0] == "destroy" and predicted_matches(rest, real[1:])) or \
            predicted_matches(rest, real)
    return bool(real) and real[0] == head and predicted_matches(rest, real[1:])


def _stop_timeout(p):
    return 0 if p.get("force") else p["shutdown_timeout"]


def _predicted_calls(steps, p, observed=None):
    graceful = _stop_timeout(p) > 0 and (observed or {}).get("state") == "running"
    # after a shutdown request the destroy follows only if the guest has not stopped by itself
    # within shutdown_timeout: check mode cannot know what the guest will do, so it names the
    # condition (CONDITIONAL_DESTROY); a real run lists "destroy" only if it powered off
    names = {"define": ["defineXML"], "destroy": ["destroy"], "undefine": ["undefineFlags"],
             "stop": ["shutdown", CONDITIONAL_DESTROY % _stop_timeout(p)] if graceful else ["destroy"],
             "start": ["createWithFlags"], "start_paused": ["createWithFlags"], "resume": ["resume"],
             "suspend": ["suspend"]}
    out = []
    for step in steps:
        if step["action"] == "autostart":
            out.append("setAutostart(%d)" % step["value"])
        elif step["action"] == "remove_storage":
            out.extend("remove(%s)" % path for path in step["paths"])
        else:
            out.extend(names[step["action"]])
    return out


def run(p, check_mode=False, want_diff=False):
    """The whole module: returns the result dict (raises LibvirtModuleError on bad input/failure)."""
    domain_spec.check_text(p)
    timeout = p.get("shutdown_timeout")
    if timeout is None or not 0 <= timeout <= domain_spec.MAX_SHUTDOWN_TIMEOUT:
        raise LibvirtModuleError("shutdown_timeout: needs a number of seconds from 0 to %d, got %s"
                                 % (domain_spec.MAX_SHUTDOWN_TIMEOUT, timeout))
    state_only = p["state"] != "absent" and _state_only(p)
    desired = None if state_only else domain_spec.desired_spec(p)
    if state_only:
        domain_spec.check_name(p["name"])
    if p.get("remove_storage") and p["state"] != "absent":
        raise LibvirtModuleError("remove_storage: only used with state=absent")
    with lv.connect(p["uri"]) as conn:
        observed, dom = observe(conn, p["name"], desired["extra_devices"] if desired else None)
        if state_only and not observed["exists"]:
            raise LibvirtModuleError("domain %s does not exist; give vcpus and memory (and disks, ...) to define it"
                                     % p["name"])
        if p.get("uuid") and observed["exists"] and observed["uuid"] != domain_spec.check_uuid(p["uuid"], "uuid"):
            raise LibvirtModuleError("uuid: domain %s exists with uuid %s; libvirt cannot change a domain's uuid "
                                     "(undefine it first)" % (p["name"], observed["uuid"]))
        changes, xml, before = [], None, observed.get("spec")
        if desired is not None:
            domain_spec.assign_macs(desired, observed.get("spec"))
            before = domain_spec.project(observed["spec"], desired) if observed["exists"] else None
            changes = domain_spec.compare(desired, before)
            xml = domain_xml.render(desired, uuid=observed.get("uuid") or p.get("uuid"))
        steps = plan(p, observed, changes, p.get("restart_on_change"), p.get("remove_storage"))
        live_changes = []
        if desired is not None and observed["active"] and not any(s["action"] == "stop" for s in steps):
            live = domain_spec.project(observed["live_spec"], desired)
            live_changes = [c["field"] for c in domain_spec.compare(desired, live) if c["field"] not in LIVE_IGNORED]
        calls = []
        if check_mode:
            calls = _predicted_calls(steps, p, observed)
        elif steps:
            dom = apply(conn, dom, steps, xml, p, calls)
        result = {"changed": bool(steps), "changes": steps, "calls": calls, "xml": xml,
                  "needs_restart": bool(live_changes), "restart_fields": live_changes}
        after_state = _after_state(p, observed)
        result["state"] = after_state
        result["domain"] = {"name": p["name"], "state": after_state,
                            "uuid": observed.get("uuid") or (dom.UUIDString() if dom is not None and
                                                             after_state != "absent" else p.get("uuid")),
                            "autostart": bool(p["autostart"]) if p.get("autostart") is not None
                            else observed["autostart"] and after_state != "absent"}
        if not check_mode and desired is not None and any(s["action"] == "define" for s in steps):
            stored = domain_spec.project(domain_xml.parse(dom.XMLDesc(lv.libvirt.VIR_DOMAIN_XML_INACTIVE | _secure_flag()),
                                                          desired["extra_devices"])[0], desired)
            left = domain_spec.compare(desired, stored)
            if left:
                result["warnings"] = ["libvirt stored these fields differently than rendered, so the next run "
                                      "will redefine again: %s" % [dict(c, before=_masked_value(c, "before"),
                                                                        after=_masked_value(c, "after")) for c in left]]
        if want_diff:
            diff = _diff(observed, before, desired, p, result)
            result["diff"] = {"before": domain_spec.masked(diff["before"]), "after": domain_spec.masked(diff["after"])}
    result["xml"] = domain_xml.mask_xml(result["xml"])
    return result


def _after_state(p, observed):
    if p["state"] == "present":
        if not observed["exists"]:
            return "shutoff"
        return observed["state"] if observed["active"] else "shutoff"
    return p["state"]


def _diff(observed, before, desired, p, result):
    b = {"state": observed["state"], "autostart": observed["autostart"]} if observed["exists"] else {"state": "absent"}
    a = {"state": result["state"], "autostart": result["domain"]["autostart"]} if result["state"] != "absent" \
        else {"state": "absent"}
    if desired is not None:
        b.update(before or {})
        a.update(desired)
    elif observed["exists"] and p["state"] != "absent":
        b.update(observed["spec"])
        a.update(observed["spec"])
    elif observed["exists"]:
        b.update(observed["spec"])
    return {"before": b, "after": a}
