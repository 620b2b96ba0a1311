# -*- coding: utf-8 -*-
# Copyright: hospital.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""libvirt_domain: desired spec + observed domain -> planned actions -> applied through a recorder.

`plan()` is pure and the only place deciding what happens; `apply()` runs its actions in check
mode too, with a recorder that records the mutating calls instead of making them, so the calls
check mode returns are the calls a real run makes.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import time

from ansible_collections.hospital.cloud.plugins.module_utils.libvirt import connection as lv
from ansible_collections.hospital.cloud.plugins.module_utils.libvirt import domain_spec, domain_xml
from ansible_collections.hospital.cloud.plugins.module_utils.common.contract import ModuleError, Result

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


CONDITIONAL_DESTROY = "destroy if still running after %d s"


def _stop_timeout(p):
    return 0 if p.get("force") else p["shutdown_timeout"]


def _stop(dom, rec, timeout, state):
    """ACPI shutdown, wait up to `timeout` s, then power off (destroy) if the guest still runs.
    A paused guest cannot react to ACPI and is powered off at once. Returns whether it powered off.

    The power-off after a shutdown request depends on the guest, which no prediction can know:
    it is one recorded call, CONDITIONAL_DESTROY, in check mode and in a real run alike (the
    run's `powered_off` says whether it was needed)."""
    if timeout > 0 and state == "running":
        rec.call("shutdown", lv.method(dom, "shutdown"))
        return bool(rec.call(CONDITIONAL_DESTROY % timeout, _destroy_unless_stopped, dom, timeout))
    return bool(rec.call("destroy", _destroy_if_active, dom))


def _destroy_unless_stopped(dom, timeout):
    deadline = time.monotonic() + timeout
    while dom.isActive() and time.monotonic() < deadline:
        time.sleep(0.5)
    return _destroy_if_active(dom)


def _destroy_if_active(dom):
    if not dom.isActive():
        return False
    dom.destroy()
    return True


def _undefine(dom):
    flags = 0
    for flag in ("VIR_DOMAIN_UNDEFINE_MANAGED_SAVE", "VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA",
                 "VIR_DOMAIN_UNDEFINE_NVRAM", "VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA"):
        flags |= getattr(lv.libvirt, flag, 0)
    try:
        dom.undefineFlags(flags)
    except lv.libvirt.libvirtError as exc:
        if "unsupported flags" not in lv.error_text(exc):
            raise
        dom.undefine()  # drivers without these flags (the test driver)


def _start_paused(dom):
    try:
        dom.createWithFlags(lv.libvirt.VIR_DOMAIN_START_PAUSED)
    except lv.libvirt.libvirtError as exc:
        if "unsupported flags" not in lv.error_text(exc):
            raise
        # drivers without VIR_DOMAIN_START_PAUSED (the test driver): start, then pause at once
        dom.createWithFlags(0)
        dom.suspend()


def _remove_file(conn, path):
    vol = _volume(conn, path)
    if vol is not None:
        vol.delete(0)  # a volume of a storage pool
        return
    try:
        os.unlink(path)
    except OSError as exc:
        raise ModuleError("remove_storage: cannot remove %s: %s" % (path, exc))


def _volume(conn, path):
    try:
        return conn.storageVolLookupByPath(path)
    except lv.libvirt.libvirtError:
        return None


SIMPLE = {"start": ("createWithFlags", "createWithFlags", 0), "resume": ("resume", "resume"),
          "suspend": ("suspend", "suspend")}


def apply(conn, dom, steps, xml, p, rec, state):
    """Run the planned steps through the recorder `rec` (which in check mode records only).
    `state` is the observed run state. Returns (domain, powered_off)."""
    powered_off = False
    for step in steps:
        dom, off = _apply_step(conn, dom, step, xml, p, rec, state)
        powered_off = powered_off or off
    return dom, powered_off


def _apply_step(conn, dom, step, xml, p, rec, state):
    action = step["action"]
    if action == "define":
        return rec.call("defineXML", conn.defineXML, xml) or dom, False
    if action == "stop":
        return dom, _stop(dom, rec, _stop_timeout(p), state)
    if action == "undefine":
        rec.call("undefineFlags", _undefine, dom)
    elif action == "remove_storage":
        for path in step["paths"]:
            # a file already gone is not removed again (read in both modes)
            if _volume(conn, path) is not None or os.path.exists(path):
                rec.call("remove(%s)" % path, _remove_file, conn, path)
    elif action == "start_paused":
        rec.call("createWithFlags", _start_paused, dom)
    elif action == "autostart":
        rec.call("setAutostart(%d)" % step["value"], lv.method(dom, "setAutostart", int(step["value"])))
    else:
        what, method = SIMPLE[action][:2]
        rec.call(what, lv.method(dom, method, *SIMPLE[action][2:]))
    return dom, False


def run(p, check_mode=False, diff=False):
    """The whole module: parameters -> Result (raises ModuleError on bad input or failure)."""
    domain_spec.check_text(p)
    timeout = p.get("shutdown_timeout")
    if timeout is None or not 0 <= timeout <= domain_spec.MAX_SHUTDOWN_TIMEOUT:
        raise ModuleError("shutdown_timeout: needs a number of seconds from 0 to %d, got %s"
                          % (domain_spec.MAX_SHUTDOWN_TIMEOUT, timeout))
    state_only = p["state"] != "absent" and _state_only(p)
    desired = None if state_only else domain_spec.desired_spec(p)
    if state_only:
        domain_spec.check_name(p["name"])
    if p.get("remove_storage") and p["state"] != "absent":
        raise ModuleError("remove_storage: only used with state=absent")
    with lv.connect(p["uri"]) as conn:
        observed, dom = observe(conn, p["name"], desired["extra_devices"] if desired else None)
        if state_only and not observed["exists"]:
            raise ModuleError("domain %s does not exist; give vcpus and memory (and disks, ...) to define it"
                              % p["name"])
        if p.get("uuid") and observed["exists"] and observed["uuid"] != domain_spec.check_uuid(p["uuid"], "uuid"):
            raise ModuleError("uuid: domain %s exists with uuid %s; libvirt cannot change a domain's uuid "
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
        rec = lv.recorder(check_mode)
        dom, powered_off = apply(conn, dom, steps, xml, p, rec, observed["state"])
        result = Result(changed=bool(steps), calls=rec.calls, changes=steps, xml=xml, powered_off=powered_off,
                        needs_restart=bool(live_changes), restart_fields=live_changes)
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
        if diff:
            shown = _diff(observed, before, desired, p, result)
            result["diff"] = {"before": domain_spec.masked(shown["before"]), "after": domain_spec.masked(shown["after"])}
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
