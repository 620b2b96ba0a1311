# -*- coding: utf-8 -*-
# Copyright: hospital.cloud maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rack as the roles see it: every libvirt domain of every host, and the keys of a VM the placement takes.

Pure functions on plain data; the filters in plugins/filter turn RackInputError into AnsibleFilterError.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ansible_collections.hospital.cloud.plugins.plugin_utils.placement.model import VM_KEYS

# keys of a vm_guests_vms entry the placement filter takes (vm_guests and host_maintenance): the placement
# model's own list, defined once
PLACEMENT_KEYS = VM_KEYS
# disk types that live in Ceph or on the network: they follow a VM to another host
SHARED_DISK_TYPES = ("rbd", "network")


class RackInputError(ValueError):
    """Input the rack filters cannot use; the message says what and where."""


def is_list(value):
    """A list-like value (not a string, not a mapping)."""
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def to_bool(value):
    """What Ansible's `bool` filter makes of a value."""
    if isinstance(value, bool) or value is None:
        return bool(value)
    if isinstance(value, str):
        return value.strip().lower() in ("yes", "on", "1", "true")
    return value == 1


def placement_subset(vm):
    """The placement keys of one VM entry, in the entry's order."""
    return dict((k, v) for k, v in vm.items() if k in PLACEMENT_KEYS)


def domain_view(hostvars, hosts, register):
    """One entry per domain of each host, in host order then the order libvirt_domain_info returns.

    hostvars: {host: {register: result of hospital.cloud.libvirt_domain_info}}; a host whose result is
    missing or has no `domains` (skipped, failed in check mode) has none.
    Entry: {name, host, active, autostart, vcpus, memory, local_disks (targets of disks not in Ceph or on
    the network), owner (metadata.managed_by, '' when unset), persistent (false: a cluster's transient domain)}.
    """
    if not isinstance(register, str) or not register:
        raise RackInputError("domain_view: register must be the name of a registered variable, got %r" % (register,))
    if not is_list(hosts) or not all(isinstance(h, str) for h in hosts):
        raise RackInputError("domain_view: hosts must be a list of host names, got %r" % (hosts,))
    if not isinstance(hostvars, Mapping):
        raise RackInputError("domain_view: the input must be hostvars (a mapping of host -> variables)")
    out = []
    for host in hosts:
        if host not in hostvars:
            raise RackInputError("domain_view: %s is not in hostvars" % host)
        result = hostvars[host].get(register)
        domains = result.get("domains") if isinstance(result, Mapping) else None
        if domains is None:
            continue
        if not is_list(domains):
            raise RackInputError("domain_view: %s of %s: domains must be a list" % (register, host))
        for dom in domains:
            out.append(_entry(host, dom, register))
    return out


def _entry(host, dom, register):
    if not isinstance(dom, Mapping) or not isinstance(dom.get("name"), str) or not dom["name"]:
        raise RackInputError("domain_view: %s of %s: every domain needs a name, got %r" % (register, host, dom))
    disks = dom.get("disks") or []
    if not is_list(disks) or not all(isinstance(d, Mapping) for d in disks):
        raise RackInputError("domain_view: %s on %s: disks must be a list of mappings" % (dom["name"], host))
    metadata = dom.get("metadata")
    return {"name": dom["name"], "host": host, "active": dom.get("active"), "autostart": dom.get("autostart"),
            "vcpus": dom.get("vcpus"), "memory": dom.get("memory"),
            "local_disks": [d.get("target") for d in disks if d.get("type") not in SHARED_DISK_TYPES],
            "owner": metadata.get("managed_by", "") if isinstance(metadata, Mapping) else "",
            # a transient domain is a cluster's (hospital.cloud.cluster's HA VMs): moved by Pacemaker, never by virsh
            "persistent": dom.get("persistent", True) is not False}


def check_view(domains, who):
    """Raise unless domains is the output of domain_view."""
    if not is_list(domains) or not all(isinstance(d, Mapping) and "name" in d and "host" in d for d in domains):
        raise RackInputError("%s: the input must be the output of hospital.cloud.domain_view "
                             "(a list of {name, host, ...})" % who)


def where(domains):
    """{domain name: [hosts it is defined on]}, in the view's order."""
    out = {}
    for dom in domains:
        out.setdefault(dom["name"], []).append(dom["host"])
    return out
