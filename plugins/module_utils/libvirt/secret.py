# -*- coding: utf-8 -*-
# Copyright: hospital.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""libvirt_secret: a ceph (cephx) secret with a stable UUID and an idempotently set value.

A private secret's value cannot be read back, so the secret's <description> carries a salted
digest (sha256 over uuid + value); a different digest means the key was rotated.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import uuid as uuidlib
import xml.etree.ElementTree as ET

from ansible_collections.hospital.cloud.plugins.module_utils.common.contract import ModuleError, Result
from ansible_collections.hospital.cloud.plugins.module_utils.libvirt import connection as lv
from ansible_collections.hospital.cloud.plugins.module_utils.libvirt.domain_spec import (
    check_text, check_uuid, decode_key, secret_digest)

DIGEST_PREFIX = "hospital.cloud sha256:"
# UUIDs derived from the usage name are the same on every host, so domain XML is too
UUID_NAMESPACE = uuidlib.UUID("0b8a6c1e-93f5-4c1a-9a43-6f0d3b2e7c51")


def render(uuid, usage, digest, private=True):
    sec = ET.Element("secret", ephemeral="no", private="yes" if private else "no")
    ET.SubElement(sec, "uuid").text = uuid
    ET.SubElement(sec, "description").text = DIGEST_PREFIX + digest
    use = ET.SubElement(sec, "usage", type="ceph")
    ET.SubElement(use, "name").text = usage
    return ET.tostring(sec, encoding="unicode")


def parse(xml):
    sec = ET.fromstring(xml)
    desc = (sec.findtext("description") or "").strip()
    return {"uuid": (sec.findtext("uuid") or "").strip(), "usage_type": sec.find("usage").get("type")
            if sec.find("usage") is not None else None, "usage": (sec.findtext("usage/name") or "").strip(),
            "private": sec.get("private") == "yes",
            "digest": desc[len(DIGEST_PREFIX):] if desc.startswith(DIGEST_PREFIX) else None}


def _lookup(conn, uuid, usage):
    found = {}
    try:
        secrets = conn.listAllSecrets()
    except lv.libvirt.libvirtError as exc:
        raise ModuleError("listing the libvirt secrets failed: %s" % lv.error_text(exc))
    for sec in secrets:
        try:
            info = parse(sec.XMLDesc(0))
        except lv.libvirt.libvirtError as exc:
            if exc.get_error_code() == lv.libvirt.VIR_ERR_NO_SECRET:
                continue  # removed since the listing
            raise ModuleError("reading libvirt secret %s failed: %s" % (sec.UUIDString(), lv.error_text(exc)))
        except ET.ParseError as exc:
            raise ModuleError("libvirt returned secret XML that does not parse: %s" % exc)
        if info["uuid"] == uuid:
            found["uuid"] = (sec, info)
        elif info["usage_type"] == "ceph" and info["usage"] == usage:
            found["usage"] = (sec, info)
    return found


def run(p, check_mode=False, diff=False):
    """The whole libvirt_secret module: parameters -> Result (ModuleError on bad input or failure)."""
    check_text(p)
    usage = p["usage"]
    if not usage or not usage.strip():
        raise ModuleError("usage: the ceph usage name is required (e.g. 'client.libvirt secret')")
    uuid = check_uuid(p["uuid"], "uuid") if p.get("uuid") else str(uuidlib.uuid5(UUID_NAMESPACE, "ceph:" + usage))
    raw = None
    if p["state"] == "present":
        if p.get("value") is None:
            raise ModuleError("value: the cephx key is required with state=present")
        raw = decode_key(p["value"])
    with lv.connect(p["uri"]) as conn:
        found = _lookup(conn, uuid, usage)
        if "usage" in found:
            raise ModuleError("usage: secret %s already has usage ceph '%s'; one usage name belongs to one "
                              "secret (remove it or use its uuid)" % (found["usage"][1]["uuid"], usage))
        sec, before = found.get("uuid", (None, None))
        changes, digest = [], None
        if p["state"] == "absent":
            if sec is not None:
                changes.append({"action": "undefine"})
        else:
            digest = secret_digest(uuid, p["value"].strip())
            want = {"uuid": uuid, "usage_type": "ceph", "usage": usage, "private": p["private"], "digest": digest}
            fields = [k for k in ("usage_type", "usage", "private") if before is None or before[k] != want[k]]
            if before is None or fields:
                changes.append({"action": "define", "fields": fields})
            if before is None or before["digest"] != digest:
                changes.append({"action": "set_value", "reason": "new secret" if before is None else
                                "value differs (digest in the description)"})
        rec = lv.recorder(check_mode)
        for change in changes:
            sec = _apply(conn, rec, change, sec, render_args=(uuid, usage, before, p["private"]), raw=raw,
                         digest=digest)
    result = Result(changed=bool(changes), calls=rec.calls, changes=changes, uuid=uuid, usage=usage)
    if diff:
        public = ("uuid", "usage", "private")
        result["diff"] = {"before": dict((k, before[k]) for k in public) if before else {},
                          "after": {} if p["state"] == "absent" else dict(
                              uuid=uuid, usage=usage, private=p["private"],
                              value="(changed)" if any(c["action"] == "set_value" for c in changes) else "(unchanged)")}
    return result


def _apply(conn, rec, change, sec, render_args, raw, digest):
    """One planned change through the recorder (in check mode recorded only); returns the secret."""
    uuid, usage, before, private = render_args
    if change["action"] == "undefine":
        rec.call("undefine", lv.method(sec, "undefine"))
    elif change["action"] == "define":
        # the digest is recorded only after the value is set (a failed setValue leaves none)
        old = before["digest"] if before and before["digest"] else ""
        sec = rec.call("secretDefineXML", conn.secretDefineXML, render(uuid, usage, old, private)) or sec
    else:
        rec.call("setValue", lv.method(sec, "setValue", raw))
        rec.call("secretDefineXML", conn.secretDefineXML, render(uuid, usage, digest, private))
    return sec
