# -*- coding: utf-8 -*-
# Copyright: hospital.cloud maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""hospital.cloud.release_upgrade_plan and release_upgrade_ceph_steps: the order of a rolling Debian release
upgrade and the Ceph daemons still to restart on the new release (docs in the .yml files next to this one)."""

from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError

# target suite -> what it is; `from` is the only release a host may be upgraded from (Debian supports upgrades
# from the previous release only, Ceph at most two majors at once: 16 -> 18)
TARGETS = {
    "trixie": {"version": "13", "from_version": "12", "from_suite": "bookworm", "ceph_major": 18,
               "ceph_codename": "reef"},
}
_VERSION_RE = re.compile(r"ceph version (\d+)\.")


def release_upgrade_plan(hosts, target, mons=(), done=()):
    """Order the hosts for a one-at-a-time upgrade to `target`.

    hosts: {name: version} in inventory order (version: the Debian major the host runs);
    mons: the Ceph monitor hosts in their group's order: they go first (Ceph upgrades monitors first);
    done: hosts whose upgrade completed (a marker the playbook writes): left out, so a re-run resumes.
    Returns {target, version, from_version, ceph_major, ceph_codename, hosts, done}.
    """
    if target not in TARGETS:
        raise AnsibleFilterError("release_upgrade_plan: unknown target release %r: this collection upgrades to %s"
                                 % (target, ", ".join(sorted(TARGETS))))
    spec = TARGETS[target]
    if not isinstance(hosts, dict):
        raise AnsibleFilterError("release_upgrade_plan: hosts must be a mapping {host: Debian major version}")
    bad = ["%s (Debian %s)" % (name, version or "unknown") for name, version in hosts.items()
           if str(version) not in (spec["from_version"], spec["version"])]
    if bad:
        raise AnsibleFilterError("release_upgrade_plan: a host is upgraded to Debian %s (%s) from Debian %s only: "
                                 "%s" % (spec["version"], target, spec["from_version"], ", ".join(bad)))
    names = list(hosts)
    order = [m for m in mons if m in names] + [n for n in names if n not in mons]
    finished = set(done)
    todo = [n for n in order if n not in finished]
    return dict(spec, target=target, hosts=todo, done=[n for n in order if n in finished])


def _major(version):
    match = _VERSION_RE.search(str(version or ""))
    return int(match.group(1)) if match else None


def release_upgrade_ceph_steps(metadata, target_major, host_names=None):
    """The Ceph daemons that still run a release older than `target_major`, in the order to restart them.

    metadata: {mon: [...], mgr: [...], osd: [...]}, each the JSON of `ceph <type> metadata` (entries with
    name or id, hostname and ceph_version); host_names: {Ceph hostname: inventory name} (default: the same).
    Returns {mons: [{name, host}], mgrs: [{name, host}], osd_hosts: [{host, osds}], newer: [...], done: bool}.
    """
    if not isinstance(metadata, dict):
        raise AnsibleFilterError("release_upgrade_ceph_steps: metadata must be {mon: [...], mgr: [...], osd: [...]}")
    host_names = host_names or {}
    target_major = int(target_major)
    steps = {"mons": [], "mgrs": [], "osd_hosts": [], "newer": []}
    osd_hosts = {}
    for kind in ("mon", "mgr", "osd"):
        for entry in metadata.get(kind) or []:
            name = str(entry.get("name", entry.get("id")))
            host = host_names.get(entry.get("hostname"), entry.get("hostname"))
            major = _major(entry.get("ceph_version"))
            if major is None:
                raise AnsibleFilterError("release_upgrade_ceph_steps: %s.%s reports no ceph_version (is it down?)"
                                         % (kind, name))
            if major > target_major:
                steps["newer"].append("%s.%s (%d)" % (kind, name, major))
            if major >= target_major:
                continue
            if kind == "osd":
                osd_hosts.setdefault(host, []).append(int(name))
            else:
                steps[kind + "s"].append({"name": name, "host": host})
    steps["osd_hosts"] = [{"host": h, "osds": sorted(ids)} for h, ids in sorted(osd_hosts.items())]
    steps["done"] = not (steps["mons"] or steps["mgrs"] or steps["osd_hosts"])
    return steps


class FilterModule:
    """Rolling release upgrade: host order and Ceph restart steps."""

    def filters(self):
        return {"release_upgrade_plan": release_upgrade_plan, "release_upgrade_ceph_steps": release_upgrade_ceph_steps}
