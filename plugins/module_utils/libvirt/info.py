# -*- coding: utf-8 -*-
# Copyright: hospital.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""libvirt_domain_info: the domains of one host, shaped for the placement filter's `current`."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.hospital.cloud.plugins.module_utils.common.contract import Result
from ansible_collections.hospital.cloud.plugins.module_utils.libvirt import connection as lv
from ansible_collections.hospital.cloud.plugins.module_utils.libvirt import domain_xml


def describe(dom):
    """One domain as plain data (sizes from the inactive definition: what placement reserves)."""
    spec, uuid = domain_xml.parse(dom.XMLDesc(lv.libvirt.VIR_DOMAIN_XML_INACTIVE))
    disks = []
    for d in spec["disks"]:
        source = d["path"] or ("%s/%s" % (d["pool"], d["image"] or d["volume"]) if d["pool"] else None)
        disks.append({"target": d["target"], "type": d["type"], "device": d["device"], "source": source,
                      "format": d["format"]})
    return {"name": dom.name(), "uuid": uuid, "state": lv.domain_state(dom), "active": bool(dom.isActive()),
            "persistent": bool(dom.isPersistent()), "autostart": bool(dom.autostart()),
            "vcpus": spec["vcpus"], "memory": spec["memory"], "domain_type": spec["domain_type"],
            "disks": disks, "interfaces": [{"type": i["type"], "source": i["source"], "mac": i["mac"]}
                                           for i in spec["interfaces"]],
            "metadata": spec["metadata"]}


def run(p, check_mode=False, diff=False):  # pylint: disable=unused-argument
    """The whole libvirt_domain_info module (read-only: the same in check mode, nothing to diff)."""
    with lv.connect(p["uri"], readonly=True) as conn:
        host = p.get("host") or conn.getHostname()
        wanted = set(p.get("names") or [])
        domains = sorted((describe(dom) for dom in conn.listAllDomains(0) if not wanted or dom.name() in wanted),
                         key=lambda d: d["name"])
    return Result(changed=False, host=host, domains=domains, placement=dict((d["name"], host) for d in domains),
                  missing=sorted(wanted - set(d["name"] for d in domains)))
