# -*- coding: utf-8 -*-
# Copyright: hospital.cloud maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""hospital.cloud.backup_images and backup_problems (docs in the .yml files next to this file)."""

from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError

from ansible_collections.hospital.cloud.plugins.plugin_utils.rack.view import to_bool

IMAGE = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
# what a VM's backups must be at least: crash (freeze when the guest agent answers) or filesystem (a backup
# without the freeze is reported and alerted on)
CONSISTENCY = ("crash", "filesystem")


def backup_images(vms, pool, suffix="-root", names=None, default=False, extra=None, golden=""):
    """[{image: pool/<vm><suffix>, vm: name}] of the VMs to back up, then the extra images (golden image too)."""
    if not isinstance(vms, list):
        raise AnsibleFilterError("backup_images: expected the list vm_guests_vms, got %s" % type(vms).__name__)
    names = list(names or [])
    known = [vm.get("name") for vm in vms if isinstance(vm, dict)]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise AnsibleFilterError("backup_vms names unknown VMs %s: the VMs are %s" % (unknown, sorted(known)))
    out = []
    for vm in vms:
        if not isinstance(vm, dict) or not (vm.get("name") in names or to_bool(vm.get("backup", default))):
            continue
        entry = {"image": "%s/%s%s" % (pool, vm["name"], suffix), "vm": vm["name"]}
        consistency = vm.get("backup_consistency", "crash")
        if consistency not in CONSISTENCY:
            raise AnsibleFilterError("VM %s: backup_consistency must be one of %s, got %r"
                                     % (vm["name"], ", ".join(CONSISTENCY), consistency))
        if consistency == "filesystem":
            # hc-backup still backs the VM up when the freeze fails, and says so (an alert, not a lost backup)
            entry["consistency"] = "filesystem"
        out.append(entry)
    for image in list(extra or []) + ([golden] if golden else []):
        if not isinstance(image, str) or not IMAGE.match(image):
            raise AnsibleFilterError("backup_images: %r is not pool/image" % (image,))
        if image not in [o["image"] for o in out]:
            out.append({"image": image})
    return out


def backup_problems(settings):
    """Everything wrong with the role's settings, for one assert (empty: fine)."""
    problems = []
    retention = settings.get("retention") or {}
    counts = {}
    for unit, n in retention.items():
        if unit not in ("hourly", "daily", "weekly", "monthly"):
            problems.append("backup_retention: unknown unit %r (hourly, daily, weekly, monthly)" % unit)
            continue
        try:
            counts[unit] = int(n)
        except (TypeError, ValueError):
            problems.append("backup_retention.%s: a number, got %r" % (unit, n))
            continue
        if counts[unit] < 0:
            problems.append("backup_retention.%s: 0 or more, got %d" % (unit, counts[unit]))
    if not any(n > 0 for n in counts.values()):
        problems.append("backup_retention keeps nothing (every count is 0): refused")
    if len(str(settings.get("password") or "")) < 16:
        problems.append("backup_repository_password: at least 16 characters (it encrypts the repository; keep a"
                        " copy outside the rack, without it no backup can be restored)")
    if not settings.get("repository"):
        problems.append("backup_repository: empty")
    try:
        if int(settings.get("full_every_hours", 0)) < 1:
            problems.append("backup_full_every_hours: 1 or more")
    except (TypeError, ValueError):
        problems.append("backup_full_every_hours: a number")
    if "fsfreeze_max_seconds" in settings:
        try:
            if not 1 <= int(settings["fsfreeze_max_seconds"]) <= 3600:
                problems.append("backup_fsfreeze_max_seconds: 1 to 3600 (a guest stays frozen at most this long)")
        except (TypeError, ValueError):
            problems.append("backup_fsfreeze_max_seconds: a number")
    needs_freeze = [i.get("vm") for i in settings.get("images") or [] if i.get("consistency") == "filesystem"]
    if needs_freeze and settings.get("fsfreeze") is False:
        problems.append("backup_consistency filesystem (VMs %s) needs the guest freeze: backup_fsfreeze true and the"
                        " KVM hosts in backup_fsfreeze_kvm_group" % ", ".join(needs_freeze))
    if not settings.get("images"):
        problems.append("nothing to back up: no VM with backup: true, backup_vms and backup_images are empty")
    return problems


class FilterModule:
    """Backup filters."""

    def filters(self):
        return {"backup_images": backup_images, "backup_problems": backup_problems}
