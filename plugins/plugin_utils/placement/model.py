# -*- coding: utf-8 -*-
# Copyright: hospital.cloud maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Placement input model: validation, units and the solver's view of the problem.

Units (one convention for the whole collection, matching ``libvirt_domain``):
``vcpus`` are counts, ``memory`` is MiB and ``disk`` is GiB. Integers are taken as
they are; strings are accepted only in the strict form ``"<integer> <MiB|GiB|TiB>"``
(binary units only, e.g. ``"12 GiB"``) or as plain digits.

Controller-side only: this package never imports libvirt or rados.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

DIMS = ("vcpus", "memory", "disk")
DIM_LABEL = {"vcpus": "vCPU", "memory": "RAM", "disk": "disk"}
STRATEGIES = ("pack", "spread")
RESERVES = ("none", "n+1")
SCOPES = ("host", "rack")

_UNIT_RE = re.compile(r"^\s*(\d+)\s*(MiB|GiB|TiB)?\s*$")
_TO_MIB = {None: 1, "MiB": 1, "GiB": 1024, "TiB": 1024 * 1024}


class PlacementError(Exception):
    """Malformed input or an infeasible placement; ``problems`` lists one line per cause."""

    def __init__(self, problems):
        if isinstance(problems, str):
            problems = [problems]
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


def fmt_amount(dim, value):
    """Human form of an amount in the collection's units (MiB for memory, GiB for disk)."""
    if dim == "memory":
        if value % 1024 == 0:
            return "%d GiB" % (value // 1024)
        return "%d MiB" % value
    if dim == "disk":
        return "%d GiB" % value
    return "%d" % value


# upper bounds: far above any rack, low enough that capacity * ratio stays a finite, exact number
MAX_AMOUNT = 2 ** 40  # vcpus, MiB or GiB
MAX_RATIO = 1000.0
MAX_TIME_LIMIT = 3600


def parse_amount(value, dim, where):
    """Validate one size; return an int in the collection's unit for ``dim``."""
    if isinstance(value, bool):
        raise PlacementError("%s: %s must be a number, got %r" % (where, dim, value))
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str):
        match = _UNIT_RE.match(value)
        if not match:
            raise PlacementError(
                "%s: %s %r is not an integer or '<integer> MiB|GiB|TiB'" % (where, dim, value))
        number, unit = int(match.group(1)), match.group(2)
        if unit is not None:
            if dim == "vcpus":
                raise PlacementError("%s: vcpus %r takes no unit" % (where, value))
            mib = number * _TO_MIB[unit]
            if dim == "disk":
                if mib % 1024:
                    raise PlacementError(
                        "%s: disk %r is not a whole number of GiB" % (where, value))
                mib //= 1024
            number = mib
    else:
        raise PlacementError("%s: %s must be a number, got %r" % (where, dim, value))
    if number < 0:
        raise PlacementError("%s: %s must not be negative, got %r" % (where, dim, value))
    if number > MAX_AMOUNT:
        raise PlacementError("%s: %s %r is larger than the limit %d" % (where, dim, value, MAX_AMOUNT))
    return number


def _ratio(value, where):
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise PlacementError("%s must be a positive number, got %r" % (where, value))
    try:
        number = float(value)
    except ValueError:
        raise PlacementError("%s must be a positive number, got %r" % (where, value)) from None
    if number <= 0 or math.isnan(number) or math.isinf(number):
        raise PlacementError("%s must be a positive number, got %r" % (where, value))
    if number > MAX_RATIO:
        raise PlacementError("%s must be at most %g, got %r" % (where, MAX_RATIO, value))
    return number


def _name(entry, kind, index):
    if not isinstance(entry, dict):
        raise PlacementError("%s #%d must be a dict, got %r" % (kind, index, entry))
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        raise PlacementError("%s #%d has no name" % (kind, index))
    return name


def _labels(value, where):
    if value is None:
        return frozenset()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple, set, frozenset)) or not all(
            isinstance(v, str) for v in value):
        raise PlacementError("%s must be a list of strings, got %r" % (where, value))
    return frozenset(value)


def _check_keys(entry, allowed, where):
    unknown = sorted(set(entry) - set(allowed))
    if unknown:
        raise PlacementError("%s: unknown key(s) %s (allowed: %s)"
                             % (where, ", ".join(unknown), ", ".join(sorted(allowed))))


@dataclass
class Host:
    name: str
    index: int
    total: tuple
    capacity: tuple
    rack: str
    labels: frozenset
    maintenance: bool


@dataclass
class VM:
    name: str
    demand: tuple
    anti_affinity: tuple = ()          # ((group, scope), ...)
    affinity: str = None
    pin: str = None
    requires: frozenset = frozenset()


@dataclass
class Item:
    """What the solver places: one VM, or an affinity group that moves as a whole."""
    index: int
    vms: list
    demand: tuple
    anti_affinity: tuple
    pin: int = None                    # host index
    requires: frozenset = frozenset()
    current: int = None                # host index where it runs now (stays there if it can)
    current_split: int = 0             # members of the group currently elsewhere (count as moves)
    current_count: int = 0             # members running on ``current``

    @property
    def name(self):
        return self.vms[0].name


@dataclass
class Problem:
    hosts: list
    vms: list
    items: list
    strategy: str = "pack"
    reserve: str = "none"
    time_limit: float = 2.0
    use_solver: bool = True
    groups: dict = field(default_factory=dict)       # anti-affinity group -> scope
    current_unknown: dict = field(default_factory=dict)  # vm -> host name not in hosts
    current_of: dict = field(default_factory=dict)       # vm -> host name (known hosts only)


HOST_KEYS = ("name", "vcpus", "memory", "disk", "rack", "labels", "overcommit", "reserved",
             "maintenance")
VM_KEYS = ("name", "vcpus", "memory", "disk", "anti_affinity", "affinity", "pin", "requires")


def parse_host(entry, index):
    name = _name(entry, "host", index)
    where = "host %s" % name
    _check_keys(entry, HOST_KEYS, where)
    total = tuple(parse_amount(entry.get(d, 0), d, where) for d in DIMS)
    over = entry.get("overcommit") or {}
    if not isinstance(over, dict):
        raise PlacementError("%s: overcommit must be a dict {cpu: .., ram: ..}" % where)
    _check_keys(over, ("cpu", "ram"), where + " overcommit")
    cpu = _ratio(over.get("cpu", 1.0), where + " overcommit.cpu")
    ram = _ratio(over.get("ram", 1.0), where + " overcommit.ram")
    reserved = entry.get("reserved") or {}
    if not isinstance(reserved, dict):
        raise PlacementError("%s: reserved must be a dict {vcpus: .., memory: .., disk: ..}" % where)
    _check_keys(reserved, DIMS, where + " reserved")
    res = tuple(parse_amount(reserved.get(d, 0), d, where + " reserved") for d in DIMS)
    for dim, tot, rsv in zip(DIMS, total, res):
        if rsv > tot:
            raise PlacementError("%s: reserved %s (%s) exceeds the total (%s)"
                                 % (where, dim, fmt_amount(dim, rsv), fmt_amount(dim, tot)))
    # Nova/placement convention: capacity = (total - reserved) * allocation ratio
    capacity = (int(math.floor((total[0] - res[0]) * cpu + 1e-9)),
                int(math.floor((total[1] - res[1]) * ram + 1e-9)),
                total[2] - res[2])
    rack = entry.get("rack", name)
    if not isinstance(rack, str) or not rack:
        raise PlacementError("%s: rack must be a non-empty string" % where)
    maintenance = entry.get("maintenance", False)
    if not isinstance(maintenance, bool):
        raise PlacementError("%s: maintenance must be a boolean" % where)
    return Host(name=name, index=index, total=total, capacity=capacity, rack=rack,
                labels=_labels(entry.get("labels"), where + " labels"),
                maintenance=maintenance)


def _anti_affinity(value, where):
    if value is None:
        return ()
    if isinstance(value, (str, dict)):
        value = [value]
    if not isinstance(value, list):
        raise PlacementError("%s: anti_affinity must be a group name, {group, scope} or a list"
                             % where)
    out = []
    for item in value:
        if isinstance(item, str) and item:
            out.append((item, "host"))
        elif isinstance(item, dict):
            _check_keys(item, ("group", "scope"), where + " anti_affinity")
            group, scope = item.get("group"), item.get("scope", "host")
            if not isinstance(group, str) or not group:
                raise PlacementError("%s: anti_affinity entry needs a group name" % where)
            if scope not in SCOPES:
                raise PlacementError("%s: anti_affinity scope must be one of %s, got %r"
                                     % (where, ", ".join(SCOPES), scope))
            out.append((group, scope))
        else:
            raise PlacementError("%s: bad anti_affinity entry %r" % (where, item))
    return tuple(sorted(set(out)))


def parse_vm(entry, index):
    name = _name(entry, "vm", index)
    where = "vm %s" % name
    _check_keys(entry, VM_KEYS, where)
    demand = tuple(parse_amount(entry.get(d, 0), d, where) for d in DIMS)
    affinity = entry.get("affinity")
    if affinity is not None and (not isinstance(affinity, str) or not affinity):
        raise PlacementError("%s: affinity must be a group name" % where)
    pin = entry.get("pin")
    if pin is not None and (not isinstance(pin, str) or not pin):
        raise PlacementError("%s: pin must be a host name" % where)
    return VM(name=name, demand=demand, anti_affinity=_anti_affinity(entry.get("anti_affinity"), where),
              affinity=affinity, pin=pin, requires=_labels(entry.get("requires"), where + " requires"))


def parse_current(current):
    """Accept {vm: host}, a list of {name, host} dicts, or None; return {vm: host}."""
    if current is None:
        return {}
    if isinstance(current, dict):
        items = list(current.items())
    elif isinstance(current, list):
        items = []
        for i, entry in enumerate(current):
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) \
                    or not isinstance(entry.get("host"), str):
                raise PlacementError("current #%d must be a dict with name and host, got %r"
                                     % (i, entry))
            items.append((entry["name"], entry["host"]))
    else:
        raise PlacementError("current must be a {vm: host} mapping or a list of {name, host}")
    out = {}
    for vm, host in items:
        if not isinstance(vm, str) or not isinstance(host, str):
            raise PlacementError("current: %r -> %r must map a VM name to a host name" % (vm, host))
        if vm in out and out[vm] != host:
            raise PlacementError("current: vm %s is listed on both %s and %s" % (vm, out[vm], host))
        out[vm] = host
    return out


def _unique(names, kind):
    seen, dups = set(), set()
    for n in names:
        if n in seen:
            dups.add(n)
        seen.add(n)
    if dups:
        raise PlacementError("duplicate %s name(s): %s" % (kind, ", ".join(sorted(dups))))


def build_problem(vms, hosts, current=None, strategy="pack", reserve="none",
                  time_limit=2.0, use_solver=True):
    """Validate raw filter input and build the solver's :class:`Problem`."""
    if not isinstance(vms, list):
        raise PlacementError("the VM list must be a list of dicts, got %s" % type(vms).__name__)
    if not isinstance(hosts, list):
        raise PlacementError("hosts must be a list of dicts, got %s" % type(hosts).__name__)
    if strategy not in STRATEGIES:
        raise PlacementError("strategy must be one of %s, got %r" % (", ".join(STRATEGIES), strategy))
    if reserve in (None, False):
        reserve = "none"
    if reserve not in RESERVES:
        raise PlacementError("reserve must be one of %s, got %r" % (", ".join(RESERVES), reserve))
    if isinstance(time_limit, bool) or not isinstance(time_limit, (int, float)) \
            or not (math.isfinite(time_limit) and 0 <= time_limit <= MAX_TIME_LIMIT):
        raise PlacementError("time_limit must be a number of seconds from 0 to %d, got %r"
                             % (MAX_TIME_LIMIT, time_limit))
    host_objs = [parse_host(h, i) for i, h in enumerate(hosts)]
    vm_objs = [parse_vm(v, i) for i, v in enumerate(vms)]
    _unique([h.name for h in host_objs], "host")
    _unique([v.name for v in vm_objs], "vm")
    by_host = {h.name: h for h in host_objs}
    errors = ["vm %s: pin to unknown host %s" % (v.name, v.pin)
              for v in vm_objs if v.pin is not None and v.pin not in by_host]
    if errors:
        raise PlacementError(errors)
    cur = parse_current(current)
    vm_names = {v.name for v in vm_objs}

    groups = {}
    for v in vm_objs:
        for group, scope in v.anti_affinity:
            if groups.setdefault(group, scope) != scope:
                raise PlacementError("anti-affinity group %s is used with both host and rack scope"
                                     % group)

    # affinity groups become one item; order items by their first VM in the input
    buckets, order = {}, []
    for v in vm_objs:
        key = ("a", v.affinity) if v.affinity else ("v", v.name)
        if key not in buckets:
            buckets[key] = []
            order.append(key)
        buckets[key].append(v)
    items, unknown = [], {}
    for key in order:
        members = buckets[key]
        demand = tuple(sum(m.demand[d] for m in members) for d in range(len(DIMS)))
        pins = sorted({m.pin for m in members if m.pin})
        if len(pins) > 1:
            raise PlacementError("affinity group %s: members are pinned to different hosts (%s)"
                                 % (key[1], ", ".join(pins)))
        aa = {}
        for m in members:
            for group, scope in m.anti_affinity:
                aa.setdefault(group, []).append(m.name)
        clash = ["%s (%s)" % (g, ", ".join(n)) for g, n in sorted(aa.items()) if len(n) > 1]
        if clash:
            raise PlacementError("affinity group %s: members share anti-affinity group %s"
                                 % (key[1], "; ".join(clash)))
        item = Item(index=len(items), vms=members, demand=demand,
                    anti_affinity=tuple(sorted((g, groups[g]) for g in aa)),
                    pin=by_host[pins[0]].index if pins else None,
                    requires=frozenset().union(*[m.requires for m in members]))
        # where does it run now? the host holding most members (ties: host order)
        votes = {}
        for m in members:
            h = cur.get(m.name)
            if h is None:
                continue
            if h not in by_host:
                unknown[m.name] = h
                continue
            votes[by_host[h].index] = votes.get(by_host[h].index, 0) + 1
        if votes:
            best = min(votes, key=lambda hi: (-votes[hi], hi))
            item.current = best
            item.current_split = sum(votes.values()) - votes[best]
            item.current_count = votes[best]
        items.append(item)
    return Problem(hosts=host_objs, vms=vm_objs, items=items, strategy=strategy, reserve=reserve,
                   time_limit=float(time_limit), use_solver=bool(use_solver), groups=groups,
                   current_unknown=unknown,
                   current_of={v: h for v, h in cur.items() if v in vm_names and h in by_host})
