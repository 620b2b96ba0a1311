# -*- coding: utf-8 -*-
# Copyright: hospital.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Domain spec <-> libvirt <domain> XML, in one place (render and parse are each other's inverse
on the owned fields; tests/unit/libvirt checks the round trip with hypothesis)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import xml.etree.ElementTree as ET

from ansible_collections.hospital.cloud.plugins.module_utils.libvirt.domain_spec import (
    DEFAULT_DEVICES, DISK_KEYS, MASK, TYPED_DEVICES, canon, canonical_device, contains, fail, split_monitor)

NS = "https://hospital.cloud/xmlns/libvirt/domain/1"
NS_PREFIX = "hc"


def _sub(parent, tag, text=None, **attrs):
    el = ET.SubElement(parent, tag, dict((k, str(v)) for k, v in attrs.items() if v is not None))
    if text is not None:
        el.text = str(text)
    return el


def _render_disk(devices, d):
    kinds = {"file": "file", "block": "block", "volume": "volume", "rbd": "network"}
    disk = _sub(devices, "disk", type=kinds[d["type"]], device=d["device"])
    _sub(disk, "driver", name="qemu", type=d["format"], cache=d["cache"])
    if d["type"] == "rbd":
        auth = _sub(disk, "auth", username=d["user"])
        _sub(auth, "secret", type="ceph", uuid=d["secret_uuid"])
        src = _sub(disk, "source", protocol="rbd", name="%s/%s" % (d["pool"], d["image"]))
        for mon in d["monitors"]:
            host, port = split_monitor(mon)
            _sub(src, "host", name=host, port=port)
    elif d["type"] == "volume":
        _sub(disk, "source", pool=d["pool"], volume=d["volume"])
    else:
        _sub(disk, "source", **{"file" if d["type"] == "file" else "dev": d["path"]})
    _sub(disk, "target", dev=d["target"], bus=d["bus"])
    if d["readonly"]:
        _sub(disk, "readonly")


def render(spec, uuid=None):
    """The libvirt <domain> XML (a str) for a spec; uuid keeps an existing domain's identity."""
    ET.register_namespace(NS_PREFIX, NS)
    dom = ET.Element("domain", type=spec["domain_type"])
    _sub(dom, "name", spec["name"])
    if uuid:
        _sub(dom, "uuid", uuid)
    if spec["metadata"]:
        inst = ET.SubElement(ET.SubElement(dom, "metadata"), "{%s}instance" % NS)
        for key in sorted(spec["metadata"]):
            _sub(inst, "{%s}tag" % NS, spec["metadata"][key], name=key)
    _sub(dom, "memory", spec["memory"] * 1024, unit="KiB")
    _sub(dom, "currentMemory", spec["current_memory"] * 1024, unit="KiB")
    _sub(dom, "vcpu", spec["vcpus"], placement="static",
         current=spec["vcpus_current"] if spec["vcpus_current"] != spec["vcpus"] else None)
    os_el = _sub(dom, "os", firmware="efi" if spec["firmware"] == "uefi" else None)
    _sub(os_el, "type", "hvm", machine=spec["machine"])
    for key in ("kernel", "initrd", "cmdline"):
        if spec["boot"][key]:
            _sub(os_el, key, spec["boot"][key])
    for dev in spec["boot"]["devices"]:
        _sub(os_el, "boot", dev=dev)
    feats = _sub(dom, "features")
    for feat in spec["features"]:
        _sub(feats, feat)
    cpu = spec["cpu"]
    if cpu:
        cpu_el = _sub(dom, "cpu", mode=cpu["mode"])
        if cpu["model"]:
            _sub(cpu_el, "model", cpu["model"])
        if cpu["sockets"]:
            _sub(cpu_el, "topology", sockets=cpu["sockets"], cores=cpu["cores"], threads=cpu["threads"])
    devices = _sub(dom, "devices")
    for disk in spec["disks"]:
        _render_disk(devices, disk)
    for iface in spec["interfaces"]:
        nic = _sub(devices, "interface", type=iface["type"])
        if iface["mac"]:
            _sub(nic, "mac", address=iface["mac"])
        _sub(nic, "source", **{"bridge" if iface["type"] == "bridge" else "network": iface["source"]})
        _sub(nic, "model", type=iface["model"])
    if spec["serial_console"]:
        serial = _sub(devices, "serial", type="pty")
        if spec["serial_log"]:
            _sub(serial, "log", file=spec["serial_log"], append="off")
        _sub(serial, "target", port=0)
        console = _sub(devices, "console", type="pty")
        _sub(console, "target", type="serial", port=0)
    if spec["graphics"] != "none":
        graphics = _sub(devices, "graphics", type=spec["graphics"], autoport="yes", listen=spec["graphics_listen"],
                        passwd=spec["graphics_password"], defaultMode="secure" if spec["graphics_tls"] else None)
        _sub(graphics, "listen", type="address", address=spec["graphics_listen"])
    for text in spec["extra_devices"]:
        devices.append(ET.fromstring(text))
    return ET.tostring(dom, encoding="unicode")


def _int(el, default=None):
    try:
        return int((el.text or "").strip()) if el is not None else default
    except ValueError:
        return default


def _mib(el):
    if el is None:
        return None
    scale = {"b": 1.0 / 1024, "bytes": 1.0 / 1024, "k": 1, "kib": 1, "kb": 1000.0 / 1024, "m": 1024, "mib": 1024,
             "g": 1024 ** 2, "gib": 1024 ** 2}.get(el.get("unit", "KiB").lower(), 1)
    return int(_int(el, 0) * scale) // 1024


def _parse_disk(el):
    d = dict((k, None) for k in DISK_KEYS)
    kind = el.get("type", "file")
    drv, src, tgt = el.find("driver"), el.find("source"), el.find("target")
    d.update(type={"network": "rbd"}.get(kind, kind), device=el.get("device", "disk"),
             format=drv.get("type") if drv is not None else None,
             cache=drv.get("cache") if drv is not None else None,
             target=tgt.get("dev") if tgt is not None else None,
             bus=tgt.get("bus") if tgt is not None else None,
             readonly=el.find("readonly") is not None)
    src = src if src is not None else ET.Element("source")
    if kind == "network":
        pool, _sep, image = (src.get("name") or "").partition("/")
        mons = []
        for host in src.findall("host"):
            name = host.get("name", "")
            name = "[%s]" % name if ":" in name else name
            mons.append("%s:%s" % (name, host.get("port")) if host.get("port") else name)
        auth = el.find("auth")
        secret = auth.find("secret") if auth is not None else None
        d.update(pool=pool, image=image, monitors=mons, user=auth.get("username") if auth is not None else None,
                 secret_uuid=secret.get("uuid") if secret is not None else None)
        if src.get("protocol") != "rbd":
            d["type"] = "network:%s" % src.get("protocol")
    elif kind == "volume":
        d.update(pool=src.get("pool"), volume=src.get("volume"))
    else:
        d["path"] = src.get("file") if kind == "file" else src.get("dev")
    return d


def _parse_iface(el):
    src, mac, model = el.find("source"), el.find("mac"), el.find("model")
    src = src if src is not None else ET.Element("source")
    return {"type": el.get("type"), "source": src.get("bridge") or src.get("network") or src.get("dev"),
            "model": model.get("type") if model is not None else None,
            "mac": mac.get("address").lower() if mac is not None and mac.get("address") else None}


def _parse_cpu(el):
    if el is None or (el.get("mode") in (None, "custom") and el.find("model") is None):
        if el is None or el.find("topology") is None:
            return None
    topo = el.find("topology")
    model = el.find("model")
    mode = el.get("mode", "custom")
    return {"mode": mode, "model": model.text.strip() if model is not None and mode == "custom" else None,
            "sockets": int(topo.get("sockets")) if topo is not None else None,
            "cores": int(topo.get("cores")) if topo is not None else None,
            "threads": int(topo.get("threads")) if topo is not None else None}


def _extras(devices, wanted):
    """Extra devices as canonical strings: wanted ones found (contained) in the XML count as present;
    other devices that are neither typed nor libvirt defaults count as unmanaged drift."""
    out = []
    free = [el for el in devices if el.tag not in TYPED_DEVICES]
    for text in wanted or []:
        want, canonical = canonical_device(text)
        for el in free:
            if contains(el, want):
                free.remove(el)
                out.append(canonical)
                break
    out.extend(ET.tostring(canon(el), encoding="unicode") for el in free if el.tag not in DEFAULT_DEVICES)
    return out


def _graphics_listen(graphics):
    if graphics is None:
        return None
    listen = graphics.find("listen")
    if listen is not None and listen.get("type", "address") == "address" and listen.get("address"):
        return listen.get("address")
    return graphics.get("listen")


def mask_xml(xml):
    """Rendered or libvirt XML with the console password replaced (safe to return)."""
    if not xml:
        return xml
    # within its quotes an attribute value never holds that quote (it is escaped as &quot; / &apos;)
    return re.sub(r"""passwd=("[^"]*"|'[^']*')""", 'passwd="%s"' % MASK, xml)


def parse(xml, wanted_extras=None):
    """libvirt <domain> XML -> (spec of the owned fields, uuid)."""
    try:
        dom = ET.fromstring(xml)
    except ET.ParseError as exc:
        fail("libvirt returned XML that does not parse: %s" % exc)
    os_el = dom.find("os")
    os_el = os_el if os_el is not None else ET.Element("os")
    type_el = os_el.find("type")
    vcpu = dom.find("vcpu")
    devices = dom.find("devices")
    devices = devices if devices is not None else ET.Element("devices")
    firmware = "uefi" if os_el.get("firmware") == "efi" or (
        os_el.find("loader") is not None and os_el.find("loader").get("type") == "pflash") else "bios"
    serial = devices.find("serial")
    log = serial.find("log") if serial is not None else None
    graphics = devices.find("graphics")
    meta = {}
    for tag in dom.findall("metadata/{%s}instance/{%s}tag" % (NS, NS)):
        meta[tag.get("name")] = (tag.text or "").strip()
    vcpus = _int(vcpu)
    spec = {
        "name": (dom.findtext("name") or "").strip(), "domain_type": dom.get("type"),
        "vcpus": vcpus, "vcpus_current": int(vcpu.get("current")) if vcpu is not None and vcpu.get("current")
        else vcpus,
        "memory": _mib(dom.find("memory")), "current_memory": _mib(dom.find("currentMemory")),
        "cpu": _parse_cpu(dom.find("cpu")),
        "machine": type_el.get("machine") if type_el is not None else None,
        "firmware": firmware,
        "features": [f.tag for f in (dom.find("features") if dom.find("features") is not None else [])],
        "boot": {"devices": [b.get("dev") for b in os_el.findall("boot")],
                 "kernel": os_el.findtext("kernel"), "initrd": os_el.findtext("initrd"),
                 "cmdline": os_el.findtext("cmdline")},
        "disks": [_parse_disk(el) for el in devices.findall("disk")],
        "interfaces": [_parse_iface(el) for el in devices.findall("interface")],
        "serial_console": serial is not None, "serial_log": log.get("file") if log is not None else None,
        "graphics": graphics.get("type") if graphics is not None else "none",
        "graphics_listen": _graphics_listen(graphics),
        "graphics_password": graphics.get("passwd") if graphics is not None else None,
        "graphics_tls": graphics is not None and graphics.get("defaultMode") == "secure",
        "metadata": meta,
        "extra_devices": _extras(list(devices), wanted_extras),
    }
    if spec["current_memory"] is None:
        spec["current_memory"] = spec["memory"]
    return spec, (dom.findtext("uuid") or "").strip() or None
