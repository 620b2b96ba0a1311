# -*- coding: utf-8 -*-
# Copyright: hospital.cloud maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cluster's decisions, as Pacemaker CIB elements for hospital.cloud.pacemaker_cib.

cluster_fencing: cluster properties, resource defaults, the fence devices and the fencing levels of the
nodes (storage first: the node's Ceph clients are blocklisted; then its power, where a power fence is
configured). cluster_vm_resources: one VirtualDomain resource per HA VM, placed where the placement
solver put it, with the solver's failover host as second choice, anti-affinity as colocation, and the
hosts' capacity as utilization (placement-strategy=balanced never overloads a host). cluster_problems /
cluster_vm_problems: bad input, each problem one sentence.
"""

from __future__ import annotations

import re
from xml.sax.saxutils import quoteattr

from ansible_collections.hospital.cloud.plugins.plugin_utils.placement.model import PlacementError, parse_amount
from ansible_collections.hospital.cloud.plugins.plugin_utils.placement.solver import placement as solve_placement
from ansible_collections.hospital.cloud.plugins.plugin_utils.rack.view import PLACEMENT_KEYS

POWER_FENCES = {"none": None, "ipmilan": "fence_ipmilan", "redfish": "fence_redfish",
                "testbed": "fence_hc_testbed"}
STORAGE_FENCE_ID = "hc-fence-ceph"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_OPTION_RE = re.compile(r"^[a-z][a-z0-9_]{0,40}$")
# fence agent options the CIB must not hold in clear (the role writes a root-only file and passes
# password_script instead)
SECRET_OPTIONS = ("password", "passwd")


class ClusterInputError(ValueError):
    """Bad input for a cluster filter."""


def _attr(value):
    return quoteattr(str(value))


def _nvpairs(owner, kind, pairs):
    if not pairs:
        return ""
    ident = "%s-%s" % (owner, kind)
    inner = "".join('<nvpair id=%s name=%s value=%s/>' % (_attr("%s-%s" % (ident, k)), _attr(k), _attr(v))
                    for k, v in pairs)
    tag = {"ia": "instance_attributes", "meta": "meta_attributes", "util": "utilization"}[kind]
    return "<%s id=%s>%s</%s>" % (tag, _attr(ident), inner, tag)


def _ops(owner, ops):
    inner = "".join('<op id=%s name=%s interval=%s timeout=%s/>' % (
        _attr("%s-%s-%s" % (owner, name, interval)), _attr(name), _attr(interval), _attr(timeout))
        for name, interval, timeout in ops)
    return "<operations>%s</operations>" % inner


def _primitive(ident, klass, rtype, params, meta=None, util=None, ops=(), provider=None):
    provider_attr = " provider=%s" % _attr(provider) if provider else ""
    head = '<primitive id=%s class=%s%s type=%s>' % (_attr(ident), _attr(klass), provider_attr, _attr(rtype))
    return (head + _nvpairs(ident, "ia", params) + _nvpairs(ident, "meta", meta or [])
            + _nvpairs(ident, "util", util or []) + _ops(ident, ops) + "</primitive>")


def _el(section, xml):
    return {"section": section, "xml": xml}


def _node_list(nodes):
    if not isinstance(nodes, list) or not nodes:
        raise ClusterInputError("cluster: nodes must be a non-empty list of {name, address, power_fence}")
    seen = set()
    out = []
    for i, node in enumerate(nodes):
        if not isinstance(node, dict) or not _NAME_RE.match(str(node.get("name", ""))):
            raise ClusterInputError("cluster: nodes[%d] needs a host name, got %r" % (i, node))
        if node["name"] in seen:
            raise ClusterInputError("cluster: node %s listed twice" % node["name"])
        seen.add(node["name"])
        out.append(node)
    return out


def _power(node):
    fence = node.get("power_fence") or {"type": "none"}
    if not isinstance(fence, dict):
        raise ClusterInputError("cluster_power_fence of %s: a dict with type and options, got %r" % (node["name"], fence))
    return fence


def cluster_problems(nodes, quorum_device="", storage_fence=True):
    """Every reason the cluster role must not go on, as sentences (empty list: fine)."""
    problems = []
    try:
        nodes = _node_list(nodes)
    except ClusterInputError as exc:
        return [str(exc)]
    if len(nodes) < 2:
        problems.append("cluster: %d node(s); a cluster that can fail over needs at least 3 (or 2 and a quorum "
                        "device)" % len(nodes))
    elif len(nodes) % 2 == 0 and not quorum_device:
        problems.append("cluster: %d nodes is an even number of votes - a split into halves leaves no side with "
                        "quorum; add a node or set cluster_quorum_device (a corosync-qnetd host)" % len(nodes))
    for node in nodes:
        try:
            fence = _power(node)
        except ClusterInputError as exc:
            problems.append(str(exc))
            continue
        kind = fence.get("type", "none")
        if kind not in POWER_FENCES:
            problems.append("cluster_power_fence of %s: unknown type %r (known: %s)"
                            % (node["name"], kind, ", ".join(sorted(POWER_FENCES))))
            continue
        for key in (fence.get("options") or {}):
            if not _OPTION_RE.match(str(key)):
                problems.append("cluster_power_fence of %s: option %r is not a fence agent option name" % (node["name"], key))
            elif key in SECRET_OPTIONS:
                problems.append("cluster_power_fence of %s: give the password as cluster_power_fence.password "
                                "(kept out of the CIB), not in options" % node["name"])
        if kind not in ("none", "testbed") and not (fence.get("options") or {}).get("ip"):
            problems.append("cluster_power_fence of %s: type %s needs options.ip (the BMC's address)" % (node["name"], kind))
        if kind in ("ipmilan", "redfish") and not fence.get("password"):
            problems.append("cluster_power_fence of %s: type %s needs a password (vault it)" % (node["name"], kind))
        if not node.get("address"):
            problems.append("cluster: node %s has no address for its storage fence" % node["name"])
    if not storage_fence and any(_power(n).get("type", "none") == "none" for n in nodes
                                 if isinstance(n.get("power_fence", {}), dict)):
        problems.append("cluster: cluster_storage_fence is false and a node has no power fence: such a node "
                        "could never be fenced, so its VMs would never be recovered")
    return problems


def cluster_fencing(nodes, settings):
    """Cluster properties, resource defaults, fence devices and fencing levels (pacemaker_cib elements)."""
    nodes = _node_list(nodes)
    problems = cluster_problems(nodes, settings.get("quorum_device", ""), settings.get("storage_fence", True))
    if problems:
        raise ClusterInputError("; ".join(problems))
    # stonith-action off: a reboot would blocklist and at once unblocklist the node (storage fence "on")
    props = [("stonith-enabled", "true"), ("stonith-action", "off"), ("no-quorum-policy", settings.get("no_quorum_policy", "freeze")),
             ("placement-strategy", "balanced"), ("stonith-timeout", "%ss" % settings.get("stonith_timeout", 60))]
    elements = [
        _el("crm_config", '<cluster_property_set id="hc-options">%s</cluster_property_set>' % "".join(
            '<nvpair id=%s name=%s value=%s/>' % (_attr("hc-options-" + k), _attr(k), _attr(v)) for k, v in props)),
        _el("rsc_defaults", '<meta_attributes id="hc-rsc-defaults">'
            '<nvpair id="hc-rsc-defaults-resource-stickiness" name="resource-stickiness" value=%s/>'
            '</meta_attributes>' % _attr(settings.get("stickiness", 200))),
    ]
    ceph = settings.get("ceph") or {}
    if settings.get("storage_fence", True):
        host_map = ";".join("%s:%s" % (n["name"], n["address"]) for n in nodes)
        params = [("pcmk_host_map", host_map), ("ceph_id", ceph.get("id", "hc-fence")),
                  ("ceph_keyring", ceph.get("keyring", "/etc/ceph/ceph.client.hc-fence.keyring")),
                  ("ceph_conf", ceph.get("conf", "/etc/ceph/ceph.conf"))]
        if ceph.get("mon_host"):
            params.append(("mon_host", ceph["mon_host"]))
        elements.append(_el("resources", _primitive(
            STORAGE_FENCE_ID, "stonith", "fence_ceph_blocklist", params, meta=[("provides", "unfencing")],
            ops=[("monitor", "60s", "30s")])))
    for node in nodes:
        fence = _power(node)
        agent = POWER_FENCES[fence.get("type", "none")]
        levels = [STORAGE_FENCE_ID] if settings.get("storage_fence", True) else []
        if agent:
            ident = "hc-fence-power-%s" % node["name"]
            params = [("pcmk_host_list", node["name"])] + sorted((k, v) for k, v in (fence.get("options") or {}).items())
            if fence.get("password"):
                params.append(("password_script", "cat %s/%s.password" % (settings.get("secret_dir", "/etc/hospital-cloud/fence"),
                                                                          node["name"])))
            elements.append(_el("resources", _primitive(ident, "stonith", agent, params, ops=[("monitor", "60s", "30s")])))
            elements.append(_el("constraints", '<rsc_location id=%s rsc=%s node=%s score="-INFINITY"/>' % (
                _attr("hc-loc-%s-not-self" % ident), _attr(ident), _attr(node["name"]))))
        # level 1: storage and power (both must succeed); level 2: storage alone, when the power fence cannot
        # answer (a BMC without power): the node can no longer write to Ceph, which is what keeps the data safe
        devices = levels + (["hc-fence-power-%s" % node["name"]] if agent else [])
        for index, level in enumerate([devices] + ([levels] if agent and levels else []), start=1):
            elements.append(_el("fencing-topology", '<fencing-level id=%s target=%s index="%d" devices=%s/>' % (
                _attr("hc-fl-%s-%d" % (node["name"], index)), _attr(node["name"]), index, _attr(",".join(level)))))
    return elements


def _mib(value):
    try:
        return parse_amount(value, "memory", "cluster")
    except PlacementError as exc:
        raise ClusterInputError(str(exc)) from None


def _disks_on_ceph(vm):
    extra = vm.get("extra") or {}
    return [d for d in (extra.get("disks") or []) if (d or {}).get("type", "file") != "rbd"]


def is_ha(vm, default=False):
    return bool(vm.get("ha", default))


def _flag(value):
    """A boolean as the inventory writes one (true/yes/on/1, any case) or a real bool."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "on", "1", "y", "t")
    return bool(value)


def cluster_wanted(host_vars):
    """Whether a host's inventory asks for the cluster: cluster_enabled, vm_guests_ha_default, or a VM with ha: true.
    The one rule site.yml and add_host.yml decide by."""
    if not hasattr(host_vars, "get"):
        raise ClusterInputError("cluster_wanted: expects a host's variables (hostvars[host]), got %s"
                                % type(host_vars).__name__)
    default = _flag(host_vars.get("vm_guests_ha_default", False))
    if default or _flag(host_vars.get("cluster_enabled", False)):
        return True
    vms = host_vars.get("vm_guests_vms") or []
    if not isinstance(vms, list):
        raise ClusterInputError("cluster_wanted: vm_guests_vms must be a list, got %s" % type(vms).__name__)
    return any(_flag(vm.get("ha", False)) for vm in vms if isinstance(vm, dict))


def cluster_vm_problems(vms, reserve="none", cluster_nodes=None, default=False):
    """Every reason the HA VMs cannot be handed to the cluster, as sentences."""
    problems = []
    ha = [v for v in vms or [] if isinstance(v, dict) and is_ha(v, default)]
    if not ha:
        return problems
    if reserve != "n+1":
        problems.append("HA VMs (%s) need vm_guests_placement_reserve: n+1 - without a reserve a failover could "
                        "overload a host" % ", ".join(v.get("name", "?") for v in ha))
    if cluster_nodes is not None and not cluster_nodes:
        problems.append("HA VMs (%s) need the cluster role on the KVM hosts (group cluster_group, see docs/ha.md)"
                        % ", ".join(v.get("name", "?") for v in ha))
    for vm in ha:
        if vm.get("pin"):
            problems.append("VM %s: ha and pin exclude each other (pin means it must not run elsewhere)" % vm.get("name"))
        bad = _disks_on_ceph(vm)
        if bad:
            problems.append("VM %s: ha needs every disk on Ceph (RBD); %s not" % (
                vm.get("name"), ", ".join(str(d.get("target") or d.get("path") or d) for d in bad)))
    return problems


def _groups(value):
    items = value if isinstance(value, list) else [value] if value else []
    out = []
    for item in items:
        if isinstance(item, dict):
            out.append((item.get("group"), item.get("scope", "host")))
        else:
            out.append((item, "host"))
    return out


def _ha_plan(vms, hosts, plan, settings, ha_names):
    """Homes and failover hosts of the HA VMs from the inventory alone: the solver places them with the other
    VMs held where they run now. Where an HA VM runs after a failover is the cluster's business; its
    preferences do not follow it, so a converged site.yml changes nothing after a failover."""
    current = dict((vm, host) for vm, host in ((plan or {}).get("assignment") or {}).items() if vm not in ha_names)
    try:
        entries = [dict((k, v) for k, v in vm.items() if k in PLACEMENT_KEYS) for vm in vms]
        return solve_placement(entries, hosts, current=current, strategy=settings.get("strategy", "spread"),
                               reserve="n+1", time_limit=float(settings.get("time_limit", 2)))
    except PlacementError as exc:
        raise ClusterInputError("the HA VMs cannot be placed with an n+1 reserve: %s" % "; ".join(exc.problems)) from None


def _node_entries(capacity, assignment, sizes, ha_names):
    """Per host: its capacity less the inventory's VMs outside the cluster that run there (assignment), and its
    rack as a node attribute (for rack-wide anti-affinity)."""
    nodes = {}
    for name, info in sorted(capacity.items()):
        outside = [sizes[vm] for vm, host in assignment.items() if host == name and vm not in ha_names and vm in sizes]
        nodes[name] = {"utilization": {"cpu": int(info["vcpus"]["capacity"] - sum(int(v["vcpus"]) for v in outside)),
                                       "memory": int(info["memory"]["capacity"] - sum(_mib(v["memory"]) for v in outside))},
                       "attributes": {"rack": info.get("rack", name)}}
    return nodes


def cluster_node_utilization(vms, hosts, assignment, settings=None):
    """{node: {utilization, attributes}} as cluster_vm_resources sets them, for VMs outside the cluster that now run
    where `assignment` ({vm: host}, e.g. after host_maintenance moved them) says."""
    settings = settings or {}
    if not isinstance(vms, list) or not all(isinstance(v, dict) and "name" in v for v in vms):
        raise ClusterInputError("cluster_node_utilization: vms must be a list of VM dicts with a name (vm_guests_vms)")
    if not isinstance(assignment, dict):
        raise ClusterInputError("cluster_node_utilization: assignment must be a dict of VM -> host, got %s"
                                % type(assignment).__name__)
    default = settings.get("ha_default", False)
    ha_names = set(v["name"] for v in vms if is_ha(v, default))
    try:
        capacity = solve_placement([], hosts, time_limit=0)["hosts"]
    except PlacementError as exc:
        raise ClusterInputError("cluster_node_utilization: %s" % "; ".join(exc.problems)) from None
    return _node_entries(capacity, assignment, dict((v["name"], v) for v in vms), ha_names)


def cluster_vm_resources(vms, hosts, plan, settings):  # pylint: disable=too-many-locals
    """{elements, nodes, vms}: the VirtualDomain resources of the HA VMs, their constraints and node capacity.

    Node utilization is each host's capacity less what the VMs outside the cluster use there now (the plan's
    assignment), so that Pacemaker's placement-strategy never starts an HA VM where it would not fit."""
    default = settings.get("ha_default", False)
    problems = cluster_vm_problems(vms, settings.get("reserve", "n+1"), default=default)
    if problems:
        raise ClusterInputError("; ".join(problems))
    ha = [v for v in vms if is_ha(v, default)]
    ha_names = set(v["name"] for v in ha)
    ideal = _ha_plan(vms, hosts, plan, settings, ha_names) if ha else {}
    assignment = ideal.get("assignment") or {}
    failover = ideal.get("failover") or {}
    capacity = (ideal.get("hosts") or (plan or {}).get("hosts") or {})
    sizes = dict((v["name"], v) for v in vms if isinstance(v, dict) and "name" in v)
    elements = []
    nodes = _node_entries(capacity, (plan or {}).get("assignment") or {}, sizes, ha_names)
    labels = dict((h.get("name"), h.get("labels") or []) for h in hosts if isinstance(h, dict))
    config_dir = settings.get("config_dir", "/etc/hospital-cloud/vms")
    for vm in ha:
        name = vm["name"]
        rid = "vm-%s" % name
        if name not in assignment:
            raise ClusterInputError("cluster_vm_resources: VM %s is not in the placement plan" % name)
        # the agent's own utilization (hv_memory, host_memory, cpu read from libvirt) would name capacities the
        # nodes do not declare: with placement-strategy=balanced such a VM fits nowhere. Ours is declared below.
        params = [("config", "%s/%s.xml" % (config_dir, name)), ("hypervisor", settings.get("hypervisor", "qemu:///system")),
                  ("autoset_utilization_cpu", "false"), ("autoset_utilization_hv_memory", "false"),
                  ("autoset_utilization_host_memory", "false")]
        if settings.get("force_stop"):
            params.append(("force_stop", "true"))
        elements.append(_el("resources", _primitive(
            rid, "ocf", "VirtualDomain", params, provider="heartbeat",
            meta=[("allow-migrate", "false")],
            util=[("cpu", int(vm["vcpus"])), ("memory", _mib(vm["memory"]))],
            ops=[("start", "0s", "%ss" % settings.get("start_timeout", 120)),
                 ("stop", "0s", "%ss" % settings.get("stop_timeout", 120)),
                 ("monitor", "%ss" % settings.get("monitor_interval", 10), "30s")])))
        home = assignment[name]
        elements.append(_el("constraints", '<rsc_location id=%s rsc=%s node=%s score="100"/>' % (
            _attr("hc-loc-%s-home" % name), _attr(rid), _attr(home))))
        second = (failover.get(home) or {}).get(name)
        if second:
            elements.append(_el("constraints", '<rsc_location id=%s rsc=%s node=%s score="50"/>' % (
                _attr("hc-loc-%s-failover" % name), _attr(rid), _attr(second))))
        for label in vm.get("requires") or []:
            for host in sorted(capacity):
                if label not in labels.get(host, []):
                    elements.append(_el("constraints", '<rsc_location id=%s rsc=%s node=%s score="-INFINITY"/>' % (
                        _attr("hc-loc-%s-requires-%s" % (name, host)), _attr(rid), _attr(host))))
    names = [v["name"] for v in ha]
    pairs = set()
    for vm in ha:
        for group, scope in _groups(vm.get("anti_affinity")):
            for other in ha:
                if other["name"] <= vm["name"] or (group, scope) not in _groups(other.get("anti_affinity")):
                    continue
                pairs.add((vm["name"], other["name"], scope))
        if vm.get("affinity"):
            first = min(o["name"] for o in ha if o.get("affinity") == vm["affinity"])
            if first != vm["name"]:
                elements.append(_el("constraints", '<rsc_colocation id=%s rsc=%s with-rsc=%s score="INFINITY"/>' % (
                    _attr("hc-col-%s-with-%s" % (vm["name"], first)), _attr("vm-" + vm["name"]), _attr("vm-" + first))))
    for a, b, scope in sorted(pairs):
        attr = ' node-attribute="rack"' if scope == "rack" else ""
        elements.append(_el("constraints", '<rsc_colocation id=%s rsc=%s with-rsc=%s score="-INFINITY"%s/>' % (
            _attr("hc-col-%s-apart-%s" % (a, b)), _attr("vm-" + a), _attr("vm-" + b), attr)))
    # what an agent that set its own utilization left (see above)
    absent = ["vm-%s-utilization" % n for n in names]
    return {"elements": elements, "nodes": nodes, "vms": names, "absent": absent}
