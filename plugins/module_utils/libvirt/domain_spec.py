# -*- coding: utf-8 -*-
# Copyright: hospital.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The domain model: module parameters -> a normalized `spec` of the fields the module owns.

A spec is plain data (dicts, lists, str, int, bool, None) so it can be compared, diffed and
returned. ``None`` means "not owned": libvirt's own value is kept and never compared.
domain_xml renders a spec to libvirt XML and parses XML back to a spec; compare() is the one
place where desired and observed are compared.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import hashlib
import ipaddress
import re
import uuid as uuidlib
import xml.etree.ElementTree as ET

from ansible_collections.hospital.cloud.plugins.module_utils.common.contract import ModuleError

DOMAIN_STATES = ("present", "running", "shutoff", "paused", "absent")
DISK_TYPES = ("file", "block", "volume", "rbd")
DISK_BUSES = ("virtio", "scsi", "sata", "ide", "usb")
DISK_CACHES = ("default", "none", "writethrough", "writeback", "directsync", "unsafe")
BOOT_DEVICES = ("hd", "cdrom", "network", "fd")
CPU_MODES = ("host-passthrough", "host-model", "custom")
GRAPHICS = ("none", "vnc", "spice")
# devices with a typed parameter: extra_devices may not carry them
TYPED_DEVICES = ("disk", "interface", "serial", "console", "graphics", "emulator")
# devices libvirt adds by itself: present extras of these kinds are checked, others are left alone
DEFAULT_DEVICES = ("controller", "input", "memballoon", "video", "audio")
FEATURES = ["acpi", "apic"]
DISK_KEYS = ("type", "device", "path", "pool", "volume", "image", "monitors", "user", "secret_uuid",
             "format", "target", "bus", "cache", "readonly")

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,62}$")
_TARGET_RE = re.compile(r"^(vd|sd|hd|xvd)[a-z]{1,3}$")
_MAC_RE = re.compile(r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$")
_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
_MONITOR_RE = re.compile(r"^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9_.-]+)(:(\d{1,5}))?$")
_RBD_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
# characters XML 1.0 cannot carry (and the libvirt binding rejects NUL with a Python ValueError);
# line breaks only where the value is XML itself (extra_devices)
_BAD_TEXT_RE = re.compile(u"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
_BAD_LINE_RE = re.compile(u"[\n\r]")
MAX_SHUTDOWN_TIMEOUT = 86400
GRAPHICS_LISTEN_DEFAULT = "127.0.0.1"
VNC_PASSWORD_MAX = 8  # VNC authentication (DES challenge) uses at most 8 characters
MASK = "********"
MAX_TOPOLOGY = 1024


def fail(msg):
    raise ModuleError(msg)


def check_text(value, what="", multiline=False):
    """Every string in the parameters (nested dicts/lists too) must be text XML and libvirt accept:
    no control characters (NUL included); line breaks only inside extra_devices."""
    if isinstance(value, dict):
        for key, item in value.items():
            check_text(key, "%s%s (key)" % (what + "." if what else "", key))
            check_text(item, "%s%s" % (what + "." if what else "", key), multiline or key == "extra_devices")
    elif isinstance(value, (list, tuple)):
        for idx, item in enumerate(value):
            check_text(item, "%s[%d]" % (what, idx), multiline)
    elif isinstance(value, str):
        bad = _BAD_TEXT_RE.search(value) or (None if multiline else _BAD_LINE_RE.search(value))
        if bad:
            fail("%s: contains the control character U+%04X at position %d; not allowed here"
                 % (what or "value", ord(bad.group(0)), bad.start()))
    return value


def check_uuid(value, what):
    try:
        return str(uuidlib.UUID(str(value)))
    except ValueError:
        fail("%s: '%s' is not a UUID (e.g. 5f3a1c9e-2b4d-4e8f-9a1b-0c2d3e4f5a6b)" % (what, value))


def check_name(name):
    if not name or not _NAME_RE.match(name):
        fail("name: '%s' is not a valid domain name (1-63 characters: letters, digits, '_', '.', '+', '-'; "
             "no '/', spaces or leading punctuation)" % name)
    return name


def _abs_path(value, what):
    if not value or not str(value).startswith("/"):
        fail("%s: needs an absolute path, got '%s'" % (what, value))
    if "\n" in value:
        fail("%s: a path cannot contain a newline" % what)
    return str(value)


def split_monitor(mon):
    """'host', 'host:port' or '[v6]:port' -> (host, port or None)."""
    m = _MONITOR_RE.match(mon)
    return m.group(1).strip("[]"), m.group(3)


def _disk(d, idx):
    what = "disks[%d]" % idx
    kind = d.get("type") or "file"
    out = dict((k, None) for k in DISK_KEYS)
    out.update(type=kind, device=d.get("device") or "disk", readonly=bool(d.get("readonly")),
               target=d.get("target"), bus=d.get("bus") or "virtio", cache=d.get("cache"))
    if not out["target"] or not _TARGET_RE.match(out["target"]):
        fail("%s.target: '%s' is not a disk target (vda, vdb, sda, hda, ...)" % (what, out["target"]))
    unused = {"file": ("pool", "volume", "image", "monitors", "user", "secret_uuid"),
              "block": ("pool", "volume", "image", "monitors", "user", "secret_uuid"),
              "volume": ("path", "image", "monitors", "user", "secret_uuid"),
              "rbd": ("path", "volume")}[kind]
    for key in unused:
        if d.get(key) not in (None, [], ""):
            fail("%s.%s: not used by a disk of type %s" % (what, key, kind))
    if kind in ("file", "block"):
        out["path"] = _abs_path(d.get("path"), what + ".path")
        if kind == "block" and not out["path"].startswith("/dev/"):
            fail("%s.path: a block disk needs a device path under /dev, got '%s'" % (what, out["path"]))
    elif kind == "volume":
        if not d.get("pool") or not d.get("volume"):
            fail("%s: a volume disk needs pool and volume (the libvirt storage pool and volume name)" % what)
        out.update(pool=d["pool"], volume=d["volume"])
    else:
        for key in ("pool", "image"):
            if not d.get(key) or not _RBD_NAME_RE.match(d[key]):
                fail("%s.%s: an rbd disk needs the Ceph %s name (letters, digits, '_', '.', '-'), got '%s'"
                     % (what, key, key, d.get(key)))
        if not d.get("monitors"):
            fail("%s.monitors: an rbd disk needs at least one Ceph monitor (host or host:port)" % what)
        mons = []
        for mon in d["monitors"]:
            m = _MONITOR_RE.match(str(mon))
            if not m or (m.group(3) and not 0 < int(m.group(3)) < 65536):
                fail("%s.monitors: '%s' is not host or host:port" % (what, mon))
            mons.append(str(mon))
        if not d.get("secret_uuid") or not d.get("user"):
            fail("%s: an rbd disk needs cephx auth: user (e.g. libvirt for client.libvirt) and secret_uuid "
                 "(the libvirt secret holding its key, see hospital.cloud.libvirt_secret)" % what)
        user = d["user"][len("client."):] if d["user"].startswith("client.") else d["user"]
        out.update(pool=d["pool"], image=d["image"], monitors=mons, user=user,
                   secret_uuid=check_uuid(d["secret_uuid"], what + ".secret_uuid"))
    default_format = "qcow2" if kind == "file" and out["device"] == "disk" else "raw"
    out["format"] = d.get("format") or default_format
    if kind == "rbd" and out["format"] != "raw":
        fail("%s.format: rbd disks are raw (qemu talks to the RBD image directly), got '%s'" % (what, out["format"]))
    if out["device"] == "cdrom":
        out["readonly"] = True
    return out


def _interfaces(ifaces):
    out, macs = [], set()
    for idx, i in enumerate(ifaces or []):
        what = "interfaces[%d]" % idx
        if not i.get("source"):
            fail("%s.source: the %s to attach to is required" % (what, i.get("type") or "network"))
        mac = i.get("mac")
        if mac is not None:
            mac = str(mac).lower().replace("-", ":")
            if not _MAC_RE.match(mac):
                fail("%s.mac: '%s' is not a MAC address (52:54:00:xx:xx:xx)" % (what, i["mac"]))
            if int(mac[:2], 16) & 1:
                fail("%s.mac: '%s' is a multicast address; a NIC needs a unicast MAC" % (what, i["mac"]))
            if mac in macs:
                fail("%s.mac: '%s' is used twice" % (what, mac))
            macs.add(mac)
        out.append({"type": i.get("type") or "network", "source": i["source"],
                    "model": i.get("model") or "virtio", "mac": mac})
    return out


def _cpu(cpu, vcpus):
    if not cpu:
        return None
    mode = cpu.get("mode") or "host-model"
    topo = [cpu.get(k) for k in ("sockets", "cores", "threads")]
    if any(t is not None for t in topo):
        if any(t is None or not 1 <= t <= MAX_TOPOLOGY for t in topo):
            fail("cpu: topology needs sockets, cores and threads, each from 1 to %d" % MAX_TOPOLOGY)
        if topo[0] * topo[1] * topo[2] != vcpus:
            fail("cpu: topology sockets*cores*threads = %d does not match vcpus = %d"
                 % (topo[0] * topo[1] * topo[2], vcpus))
    if mode == "custom" and not cpu.get("model"):
        fail("cpu.model: mode custom needs a CPU model (e.g. qemu64, Haswell-noTSX)")
    if mode != "custom" and cpu.get("model"):
        fail("cpu.model: only used with mode custom (mode is %s)" % mode)
    return {"mode": mode, "model": cpu.get("model"), "sockets": topo[0], "cores": topo[1], "threads": topo[2]}


def canonical_device(text, what="extra_devices"):
    """Parse one device's XML; return (element, canonical string). Raises on bad XML."""
    try:
        el = ET.fromstring(text)
    except ET.ParseError as exc:
        fail("%s: not well-formed XML (%s)" % (what, exc))
    return el, ET.tostring(canon(el), encoding="unicode")


def canon(el):
    """A copy without addresses/aliases/whitespace and with sorted attributes."""
    new = ET.Element(el.tag, dict(sorted(el.attrib.items())))
    text = (el.text or "").strip()
    if text:
        new.text = text
    for child in el:
        if child.tag not in ("address", "alias"):
            new.append(canon(child))
    return new


def contains(have, want):
    """True if element `have` carries everything `want` says (libvirt may add defaults)."""
    if have.tag != want.tag or any(have.get(k) != v for k, v in want.attrib.items()):
        return False
    if (want.text or "").strip() and (want.text or "").strip() != (have.text or "").strip():
        return False
    free = list(have)
    for child in want:
        for cand in free:
            if contains(cand, child):
                free.remove(cand)
                break
        else:
            return False
    return True


def _extras(items):
    out = []
    for idx, text in enumerate(items or []):
        el, canonical = canonical_device(text, "extra_devices[%d]" % idx)
        if el.tag in TYPED_DEVICES:
            fail("extra_devices[%d]: <%s> has a typed parameter (disks, interfaces, serial_console, graphics); "
                 "use it instead" % (idx, el.tag))
        out.append(canonical)
    return out


def desired_spec(p):
    """Validate module parameters and return the spec of the owned fields (raises ModuleError)."""
    name = check_name(p["name"])
    if p.get("uuid"):
        check_uuid(p["uuid"], "uuid")
    if p.get("state") == "absent":
        return None
    vcpus, memory = p.get("vcpus"), p.get("memory")
    if vcpus is None or vcpus < 1 or vcpus > 1024:
        fail("vcpus: needs a number of virtual CPUs between 1 and 1024, got %s" % vcpus)
    if memory is None or memory < 1 or memory > 16 * 1024 * 1024:
        fail("memory: needs a positive amount of MiB (at most 16 TiB), got %s" % memory)
    boot = dict(p.get("boot") or {})
    for key in ("kernel", "initrd"):
        if boot.get(key):
            _abs_path(boot[key], "boot." + key)
    if (boot.get("initrd") or boot.get("cmdline")) and not boot.get("kernel"):
        fail("boot: initrd and cmdline need boot.kernel (direct kernel boot)")
    devices = list(boot.get("devices") or ["hd"])
    if len(set(devices)) != len(devices):
        fail("boot.devices: each device may appear once, got %s" % devices)
    disks = [_disk(d, i) for i, d in enumerate(p.get("disks") or [])]
    targets = [d["target"] for d in disks]
    dup = sorted(set(t for t in targets if targets.count(t) > 1))
    if dup:
        fail("disks: target %s used by more than one disk" % ", ".join(dup))
    if p.get("serial_log") and not p.get("serial_console"):
        fail("serial_log: needs serial_console: true")
    if p.get("serial_log"):
        _abs_path(p["serial_log"], "serial_log")
    meta = {}
    for key, value in (p.get("metadata") or {}).items():
        if not _KEY_RE.match(str(key)):
            fail("metadata: key '%s' must start with a letter or '_' and hold letters, digits, '_', '.', '-'" % key)
        if isinstance(value, (dict, list)):
            fail("metadata: value of '%s' must be a string, number or boolean" % key)
        meta[str(key)] = str(value)
    spec = {
        "name": name, "domain_type": p.get("domain_type") or "kvm",
        "vcpus": vcpus, "vcpus_current": vcpus, "memory": memory, "current_memory": memory,
        "cpu": _cpu(p.get("cpu"), vcpus), "machine": p.get("machine"),
        "firmware": p.get("firmware") or "bios", "features": list(FEATURES),
        "boot": {"devices": devices, "kernel": boot.get("kernel"), "initrd": boot.get("initrd"),
                 "cmdline": boot.get("cmdline")},
        "disks": disks, "interfaces": _interfaces(p.get("interfaces")),
        "serial_console": bool(p.get("serial_console")), "serial_log": p.get("serial_log"),
        "metadata": meta, "extra_devices": _extras(p.get("extra_devices")),
    }
    spec.update(_graphics(p))
    return spec


def _graphics(p):
    """graphics, graphics_listen, graphics_password, graphics_tls of the spec (validated)."""
    kind = p.get("graphics") or "none"
    listen, password, tls = p.get("graphics_listen"), p.get("graphics_password"), bool(p.get("graphics_tls"))
    if kind == "none":
        for key, value in (("graphics_password", password), ("graphics_tls", tls),
                           ("graphics_insecure_no_password", p.get("graphics_insecure_no_password"))):
            if value:
                fail("%s: needs graphics vnc or spice" % key)
        return {"graphics": "none", "graphics_listen": None, "graphics_password": None, "graphics_tls": False}
    listen = GRAPHICS_LISTEN_DEFAULT if listen in (None, "") else str(listen)
    try:
        address = ipaddress.ip_address(listen)
    except ValueError:
        fail("graphics_listen: '%s' is not an IP address (default 127.0.0.1, loopback only)" % listen)
    if password is not None and password == "":
        fail("graphics_password: must not be empty")
    if kind == "vnc" and password and len(password) > VNC_PASSWORD_MAX:
        fail("graphics_password: VNC authentication uses at most %d characters (a longer one would be cut); "
             "use spice with graphics_tls for stronger protection" % VNC_PASSWORD_MAX)
    if tls and kind != "spice":
        fail("graphics_tls: only for spice (VNC TLS is host-wide: vnc_tls in the host's qemu.conf)")
    if not address.is_loopback and not password and not p.get("graphics_insecure_no_password"):
        fail("graphics_listen: %s is reachable from the network; set graphics_password (and for spice "
             "graphics_tls), or graphics_insecure_no_password: true to accept a console anyone on that "
             "network can open" % listen)
    return {"graphics": kind, "graphics_listen": listen, "graphics_password": password, "graphics_tls": tls}


def masked(spec):
    """A copy of a spec (or None) safe to return: no console password."""
    if spec is None or not spec.get("graphics_password"):
        return spec
    return dict(spec, graphics_password=MASK)


def stable_mac(name, index):
    """A MAC derived from domain name and NIC index: the same on every run and re-definition."""
    digest = hashlib.sha256(("%s/%d" % (name, index)).encode("utf-8")).digest()
    return "52:54:00:%02x:%02x:%02x" % (digest[0], digest[1], digest[2])


def assign_macs(desired, observed):
    """Fill MACs the user left out: keep the MAC of the matching existing NIC, else a stable one."""
    used = set(i["mac"] for i in desired["interfaces"] if i["mac"])
    free = [i for i in (observed or {}).get("interfaces", []) if i.get("mac") and i["mac"] not in used]
    for idx, iface in enumerate(desired["interfaces"]):
        if iface["mac"]:
            continue
        match = [o for o in free if (o["type"], o["source"]) == (iface["type"], iface["source"])] or free
        iface["mac"] = match[0]["mac"] if match else stable_mac(desired["name"], idx)
        if match:
            free.remove(match[0])
        used.add(iface["mac"])
    return desired


MACHINE_FAMILIES = {"pc": "pc-i440fx-", "q35": "pc-q35-"}


def project(observed, desired):
    """Observed spec seen through desired: fields the user does not own become None (not compared),
    and libvirt's canonical spellings of what the user asked for map back to the user's words."""
    obs = dict(observed)
    if desired["machine"] is None:
        obs["machine"] = None
    elif obs.get("machine") and obs["machine"].startswith(MACHINE_FAMILIES.get(desired["machine"], "\0")):
        obs["machine"] = desired["machine"]
    if desired["cpu"] is None:
        obs["cpu"] = None
    elif obs.get("cpu") and desired["cpu"]["sockets"] is None:
        obs["cpu"] = dict(obs["cpu"], sockets=None, cores=None, threads=None)
    obs["disks"] = [dict(o, cache=None) if i < len(desired["disks"]) and desired["disks"][i]["cache"] is None
                    else o for i, o in enumerate(obs.get("disks", []))]
    obs["features"] = [f for f in obs.get("features", []) if f in FEATURES]
    return obs


def compare(desired, observed):
    """The owned fields that differ: [{'field', 'before', 'after'}] (observed must be projected)."""
    out = []
    for key in desired:
        before = None if observed is None else observed.get(key)
        if key == "extra_devices" and observed is not None:
            before, after = sorted(before or []), sorted(desired[key])
            if before == after:
                continue
        if before != desired[key]:
            out.append({"field": key, "before": before, "after": desired[key]})
    return out


def secret_digest(uuid, value):
    """The salted digest kept in a secret's description (the value itself cannot be read back)."""
    return hashlib.sha256(("%s:%s" % (uuid, value)).encode("utf-8")).hexdigest()


def decode_key(value):
    """A cephx key as printed by `ceph auth get-key` (base64) -> bytes; clear error otherwise."""
    try:
        raw = base64.b64decode(str(value).strip(), validate=True)
    except (ValueError, TypeError):
        raw = b""
    if not raw:
        fail("value: a cephx secret is the base64 key printed by `ceph auth get-key`; this value is not base64")
    return raw
