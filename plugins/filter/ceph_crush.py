# -*- coding: utf-8 -*-
# Copyright: hospital.cloud maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""hospital.cloud.ceph_crush_plan: racks as CRUSH buckets and the pools' failure domain (docs in
ceph_crush_plan.yml next to this file)."""

from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError

# CRUSH bucket names: what `ceph osd crush add-bucket` accepts
_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")


def _tree_index(osd_tree):
    """{name: (type, id)} and {child id: parent name} from `ceph osd tree --format json`."""
    if not isinstance(osd_tree, dict) or not isinstance(osd_tree.get("nodes"), list):
        raise AnsibleFilterError("ceph_crush_plan: osd_tree must be the JSON of `ceph osd tree --format json` "
                                 "(a dict with 'nodes')")
    nodes, parent = {}, {}
    for node in osd_tree["nodes"]:
        nodes[node["name"]] = (node["type"], node["id"])
    for node in osd_tree["nodes"]:
        for child in node.get("children", []):
            parent[child] = node["name"]
    return nodes, parent


def ceph_crush_plan(host_racks, osd_tree, rules, rack_rule="replicated_rack", root="default", min_racks=3):
    """The `ceph` commands that put every OSD host under its rack, and the rule replicated pools use.

    host_racks: {short host name: rack} (an empty rack leaves the host where it is).
    Returns {racks, failure_domain, rule, rule_exists, commands, warnings}; rule is None where there
    are fewer than min_racks racks (the pools keep their rule, replicas spread over hosts).
    """
    if not isinstance(host_racks, dict):
        raise AnsibleFilterError("ceph_crush_plan: host_racks must be a mapping {host: rack}")
    placed = dict((str(h), str(r)) for h, r in host_racks.items() if r not in (None, ""))
    bad = sorted(r for r in set(placed.values()) if not _NAME_RE.match(r))
    if bad:
        raise AnsibleFilterError("ceph_crush_plan: rack names may hold letters, digits, '_', '.', '-' only: %s"
                                 % ", ".join(bad))
    clash = sorted(set(placed.values()) & set(placed))
    if clash:
        raise AnsibleFilterError("ceph_crush_plan: %s is both a host and a rack name (CRUSH names are unique)"
                                 % ", ".join(clash))
    if not _NAME_RE.match(str(rack_rule)) or not _NAME_RE.match(str(root)):
        raise AnsibleFilterError("ceph_crush_plan: rack_rule and root must be CRUSH names, got %r, %r"
                                 % (rack_rule, root))
    nodes, parent = _tree_index(osd_tree)
    if nodes.get(root, ("",))[0] != "root":
        raise AnsibleFilterError("ceph_crush_plan: the CRUSH map has no root bucket named %r" % root)
    racks = sorted(set(placed.values()))
    commands = []
    for rack in racks:
        kind, bucket_id = nodes.get(rack, (None, None))
        if kind is None:
            commands.append(["osd", "crush", "add-bucket", rack, "rack"])
        elif kind != "rack":
            raise AnsibleFilterError("ceph_crush_plan: %r is a CRUSH %s, not a rack" % (rack, kind))
        if kind is None or parent.get(bucket_id) != root:
            commands.append(["osd", "crush", "move", rack, "root=%s" % root])
    for host in sorted(placed):
        kind, bucket_id = nodes.get(host, (None, None))
        # a host without OSDs has no bucket yet: its OSDs create it at their first start (next run moves it)
        if kind == "host" and parent.get(bucket_id) != placed[host]:
            commands.append(["osd", "crush", "move", host, "rack=%s" % placed[host]])
    warnings = []
    rules = list(rules or [])
    if len(racks) >= int(min_racks):
        rule = rack_rule
        if rack_rule not in rules:
            commands.append(["osd", "crush", "rule", "create-replicated", rack_rule, root, "rack"])
    else:
        rule = None
        warnings.append(
            "the OSD hosts are in %d rack(s) (%s), fewer than %d: replicated pools keep the host failure domain, "
            "so the loss of one rack can take every replica of a PG. Spread the OSD hosts over at least %d racks."
            % (len(racks), ", ".join(racks) or "none given", int(min_racks), int(min_racks)))
    return {"racks": racks, "failure_domain": "rack" if rule else "host", "rule": rule,
            "rule_exists": rule is None or rule in rules, "commands": commands, "warnings": warnings}


class FilterModule:
    """CRUSH topology filters."""

    def filters(self):
        return {"ceph_crush_plan": ceph_crush_plan}
