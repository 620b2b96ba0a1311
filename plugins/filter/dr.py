# -*- coding: utf-8 -*-
# Copyright: hospital.cloud maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""hospital.cloud.dr_vm_problems (docs in the .yml file next to this file)."""

from __future__ import annotations

from collections.abc import Mapping


def dr_vm_problems(dr_vms, lookups=None, site=""):
    """Messages for what stops a failover from stopping or starting the VMs of dr_vms on this site.

    ``dr_vms``: [{name, host}]; ``lookups``: the loop results of hospital.cloud.libvirt_domain_info over dr_vms
    (one per VM, ``missing`` naming an undefined domain, ``failed``/``msg`` when the host could not be asked).
    """
    where = "site %s: " % site if site else ""
    if not isinstance(dr_vms, list):
        return ["%sdr_vms must be a list of {name, host}, got %s" % (where, type(dr_vms).__name__)]
    problems = []
    for index, vm in enumerate(dr_vms):
        if not isinstance(vm, Mapping) or not all(isinstance(vm.get(k), str) and vm.get(k) for k in ("name", "host")):
            problems.append("%sdr_vms[%d] needs a name (the libvirt domain) and a host (the KVM host it is defined on),"
                            " got %r" % (where, index, vm))
    for res in lookups or []:
        if not isinstance(res, Mapping) or res.get("skipped"):
            continue
        vm = res.get("item") or {}
        if res.get("failed"):
            problems.append("%scould not ask %s about VM %s: %s"
                            % (where, vm.get("host"), vm.get("name"), res.get("msg", "failed")))
        elif vm.get("name") in (res.get("missing") or []):
            problems.append("%sVM %s is not defined on %s (define it there, its disk on the mirrored image, before "
                            "a failover)" % (where, vm.get("name"), vm.get("host")))
    return problems


class FilterModule:
    """Disaster recovery filters."""

    def filters(self):
        return {"dr_vm_problems": dr_vm_problems}
