# -*- coding: utf-8 -*-
# Copyright: hospital.cloud maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prometheus scrape jobs from the inventory, the VMs the inventory wants running, Alertmanager silences.

Pure functions over plain data (hostvars, groups, lists); every bad input is one MonitoringInputError
with a message naming the job, group or host. The filters in plugins/filter/monitoring.py wrap them.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping

JOB_KEYS = frozenset(("name", "group", "hosts", "port", "port_var", "path", "scheme", "optional"))
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
DOMAIN_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*$")
ADDRESS_VARS = ("monitoring_address", "ansible_host")


class MonitoringInputError(ValueError):
    """Bad input to a monitoring filter."""


def _is_list(value):
    return isinstance(value, (list, tuple))


def _port(value, where):
    try:
        port = int(value)
    except (TypeError, ValueError):
        port = 0
    if isinstance(value, bool) or not 1 <= port <= 65535:
        raise MonitoringInputError("monitoring_targets: %s: port must be 1-65535, got %r" % (where, value))
    return port


def host_address(hostvars, host):
    """The host's management address: monitoring_address, else ansible_host, else the inventory name."""
    hv = hostvars[host]
    addr = next((hv[k] for k in ADDRESS_VARS if isinstance(hv.get(k), str) and hv.get(k)), host)
    if not isinstance(addr, str) or not addr or any(c.isspace() for c in addr) or "/" in addr:
        raise MonitoringInputError("monitoring_targets: host %s: no usable management address (%r)" % (host, addr))
    try:
        if ipaddress.ip_address(addr).version == 6:
            return "[%s]" % addr
    except ValueError:
        pass
    return addr


def _job_hosts(job, groups, hostvars):
    name = job["name"]
    if "group" in job and "hosts" in job:
        raise MonitoringInputError("monitoring_targets: job %s: give group or hosts, not both" % name)
    if "hosts" in job:
        hosts = job["hosts"]
        if not _is_list(hosts) or not all(isinstance(h, str) for h in hosts):
            raise MonitoringInputError("monitoring_targets: job %s: hosts must be a list of inventory names" % name)
    else:
        group = job.get("group")
        if not isinstance(group, str) or not group:
            raise MonitoringInputError("monitoring_targets: job %s: needs a group or a list of hosts" % name)
        if group not in groups:
            if job.get("optional", False) is True:
                return []
            raise MonitoringInputError(
                "monitoring_targets: job %s: group '%s' is not in the inventory (groups: %s); set optional: true "
                "on the job for a group a site may lack" % (name, group, ", ".join(sorted(groups))))
        hosts = groups[group]
    unknown = [h for h in hosts if h not in hostvars]
    if unknown:
        raise MonitoringInputError("monitoring_targets: job %s: host(s) not in the inventory: %s"
                                   % (name, ", ".join(sorted(unknown))))
    return list(dict.fromkeys(hosts))


def scrape_jobs(hostvars, groups, jobs, exclude=()):
    """Prometheus scrape_configs entries, one per job, targets on each host's management address.

    jobs: [{name, group | hosts, port, port_var?, path?, scheme?, optional?}]. port_var names a host
    variable that overrides the job's port on that host. Every target carries the label host=<inventory
    name>. A job with no hosts left is dropped. exclude: hosts left out (not scraped).
    """
    if not isinstance(hostvars, Mapping) or not isinstance(groups, Mapping):
        raise MonitoringInputError("monitoring_targets: the input must be hostvars and the second argument groups")
    if not _is_list(jobs):
        raise MonitoringInputError("monitoring_targets: jobs must be a list, got %r" % (jobs,))
    if isinstance(exclude, str):
        exclude = [exclude]
    result, seen = [], set()
    for job in jobs:
        if not isinstance(job, Mapping) or not isinstance(job.get("name"), str) or not NAME_RE.match(job["name"]):
            raise MonitoringInputError("monitoring_targets: every job needs a name ([A-Za-z_][A-Za-z0-9_.-]*), got %r"
                                       % (job,))
        name = job["name"]
        extra = sorted(set(job) - JOB_KEYS)
        if extra:
            raise MonitoringInputError("monitoring_targets: job %s: unknown key(s) %s (known: %s)"
                                       % (name, ", ".join(extra), ", ".join(sorted(JOB_KEYS))))
        if name in seen:
            raise MonitoringInputError("monitoring_targets: job %s appears twice" % name)
        seen.add(name)
        if job.get("scheme", "http") not in ("http", "https"):
            raise MonitoringInputError("monitoring_targets: job %s: scheme must be http or https" % name)
        port = _port(job.get("port"), "job %s" % name)
        static = []
        for host in _job_hosts(job, groups, hostvars):
            if host in exclude:
                continue
            host_port = port
            if job.get("port_var") and hostvars[host].get(job["port_var"]) is not None:
                host_port = _port(hostvars[host][job["port_var"]], "job %s, host %s (%s)" % (name, host, job["port_var"]))
            static.append({"targets": ["%s:%d" % (host_address(hostvars, host), host_port)], "labels": {"host": host}})
        if not static:
            continue
        entry = {"job_name": name, "metrics_path": job.get("path", "/metrics"), "scheme": job.get("scheme", "http"),
                 "static_configs": static}
        result.append(entry)
    return result


def vms_expected(vms):
    """Sorted names of the VMs the inventory wants running (vm_guests_vms; extra.state other than running: not)."""
    if not _is_list(vms):
        raise MonitoringInputError("monitoring_vms_expected: the input must be the list vm_guests_vms, got %r" % (vms,))
    names = []
    for vm in vms:
        if not isinstance(vm, Mapping) or not isinstance(vm.get("name"), str):
            raise MonitoringInputError("monitoring_vms_expected: every VM needs a name, got %r" % (vm,))
        if not DOMAIN_RE.match(vm["name"]):
            raise MonitoringInputError("monitoring_vms_expected: VM name %r cannot be a label value here" % vm["name"])
        extra = vm.get("extra") or {}
        if isinstance(extra, Mapping) and extra.get("state", "running") != "running":
            continue
        names.append(vm["name"])
    if len(set(names)) != len(names):
        raise MonitoringInputError("monitoring_vms_expected: VM names appear twice: %s"
                                   % ", ".join(sorted({n for n in names if names.count(n) > 1})))
    return sorted(names)


def _host_matchers(host, label):
    return [{"name": label, "value": host, "isRegex": False, "isEqual": True}]


def silence_ids(silences, host, created_by, label="host"):
    """Ids of the active or pending silences of exactly {label=host} made by created_by (Alertmanager v2 JSON)."""
    if not _is_list(silences):
        raise MonitoringInputError("monitoring_silence_ids: the input must be the list GET /api/v2/silences returns")
    if not isinstance(host, str) or not host or not isinstance(created_by, str) or not created_by:
        raise MonitoringInputError("monitoring_silence_ids: host and created_by must be non-empty strings")
    want = _host_matchers(host, label)
    ids = []
    for sil in silences:
        if not isinstance(sil, Mapping):
            raise MonitoringInputError("monitoring_silence_ids: a silence must be a mapping, got %r" % (sil,))
        if (sil.get("status") or {}).get("state") not in ("active", "pending") or sil.get("createdBy") != created_by:
            continue
        got = [{"name": m.get("name"), "value": m.get("value"), "isRegex": bool(m.get("isRegex", False)),
                "isEqual": bool(m.get("isEqual", True))} for m in sil.get("matchers") or []]
        if got == want:
            ids.append(sil.get("id"))
    return sorted(i for i in ids if isinstance(i, str))
