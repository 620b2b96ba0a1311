# -*- coding: utf-8 -*-
# Copyright: hospital.cloud maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Capacity report of a placement plan: a Markdown table and a PNG plot.

The Markdown table is the ``hospital.cloud.capacity_markdown`` filter; the plot needs matplotlib (Agg
backend) and is written by the module's command line, run as an installed module (the collection's
root on ``PYTHONPATH``)::

    python -m ansible_collections.hospital.cloud.plugins.plugin_utils.placement.report \
        --plan plan.json --vms vms.json --png out.png --md out.md

``plan.json`` is the output of the ``hospital.cloud.placement`` filter.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

from ansible_collections.hospital.cloud.plugins.plugin_utils.placement.model import PlacementError, parse_amount

DIMS = (("vcpus", "vCPU", 1, ""), ("memory", "RAM", 1024, " GiB"), ("disk", "Disk", 1, " GiB"))


def _num(value, scale):
    v = value / scale
    return ("%d" % v) if float(v).is_integer() else ("%.1f" % v)


# The capacity report playbook's Prometheus queries (its __capacity_report_queries hold the PromQL): per host
# CPU busy and RAM used, and the Ceph raw capacity used
LIVE_NAMES = ("ceph", "cpu", "memory")


def live_usage(responses):
    """The live usage from Prometheus query API answers ``{name: response JSON}`` (names of LIVE_NAMES):
    ``{"hosts": {host: {"cpu": percent, "memory": percent}}, "ceph_used": percent or None}``.
    A query without a result leaves its numbers out; an answer that is not a successful vector is an error."""
    if not isinstance(responses, dict) or set(responses) - set(LIVE_NAMES):
        raise ValueError("expects {name: Prometheus answer} with names from %s" % sorted(LIVE_NAMES))
    out = {"hosts": {}, "ceph_used": None}
    for name, answer in sorted(responses.items()):
        data = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(answer, dict) or answer.get("status") != "success" or not isinstance(data, dict) \
                or data.get("resultType") != "vector":
            raise ValueError("query %s: not a successful instant vector from Prometheus: %.200r" % (name, answer))
        for sample in data.get("result", []):
            try:
                value = round(float(sample["value"][1]) * 100, 1)
            except (KeyError, IndexError, TypeError, ValueError):
                raise ValueError("query %s: a sample without a number: %.200r" % (name, sample)) from None
            if math.isnan(value):  # nothing measured (e.g. a host without samples yet)
                continue
            if name == "ceph":
                out["ceph_used"] = value
            elif sample.get("metric", {}).get("host"):
                out["hosts"].setdefault(sample["metric"]["host"], {})[name] = value
    return out


def _live_markdown(live):
    lines = ["", "## Live usage (Prometheus)", "", "| Host | CPU busy | RAM used |", "|---|---:|---:|"]
    for host, use in sorted(live.get("hosts", {}).items()):
        lines.append("| %s | %s | %s |" % (host, *(("%.1f %%" % use[k]) if k in use else "-" for k in ("cpu", "memory"))))
    if live.get("ceph_used") is not None:
        lines += ["", "Ceph raw capacity used: %.1f %%." % live["ceph_used"]]
    return lines


def markdown(plan, live=None):
    """A Markdown table: one row per host, used/capacity (percent) per dimension; with ``live`` (live_usage())
    a second table of what the hosts use now."""
    s = plan.get("summary", {})
    lines = ["# Capacity report", "",
             "Strategy **%s**, reserve **%s**: %s VMs on %s of %s hosts (lower bound %s), "
             "%s move(s), solver %s." % (s.get("strategy"), s.get("reserve"), s.get("vms"),
                                         s.get("hosts_used"), s.get("hosts"), s.get("lower_bound"),
                                         s.get("moves"), s.get("solver")), "",
             "| Host | Rack | VMs | vCPU | RAM | Disk |", "|---|---|---:|---:|---:|---:|"]
    for name, h in sorted(plan["hosts"].items()):
        cells = []
        for key, dummy, scale, unit in DIMS:
            d = h[key]
            cells.append("%s / %s%s (%.1f %%)" % (
                _num(d["used"], scale), _num(d["capacity"], scale), unit, d["percent"]))
        flag = " (maintenance)" if h.get("maintenance") else ""
        lines.append("| %s%s | %s | %d | %s |" % (name, flag, h.get("rack", ""), len(h["vms"]),
                                                  " | ".join(cells)))
    if plan.get("moves"):
        lines += ["", "## Moves", "", "| VM | From | To | Reason |", "|---|---|---|---|"]
        lines += ["| %s | %s | %s | %s |" % (m["vm"], m["from"], m["to"], m["reason"])
                  for m in plan["moves"]]
    for w in plan.get("warnings", []):
        lines += ["", "> warning: %s" % w]
    if live:
        lines += _live_markdown(live)
    return "\n".join(lines) + "\n"


def render_png(plan, path):
    """Per host, stacked bars of each VM's vCPU and RAM use against the host's capacity."""
    try:  # imported here: the Markdown filter loads this module and needs no matplotlib
        import matplotlib
        matplotlib.use("Agg")
        from matplotlib import pyplot
    except ImportError:      # pragma: no cover - depends on the controller
        raise RuntimeError("matplotlib is required for the PNG report") from None
    hosts = sorted(plan["hosts"])
    sizes = plan.get("vm_sizes", {})
    fig, axes = pyplot.subplots(2, 1, figsize=(max(6, 0.6 * len(hosts) + 2), 7), sharex=True)
    for ax, (key, label, scale, unit) in zip(axes, DIMS[:2]):
        for x, name in enumerate(hosts):
            h = plan["hosts"][name]
            cap = h[key]["capacity"] / scale
            bottom = 0.0
            per_vm = [(vm, sizes.get(vm, {}).get(key)) for vm in h["vms"]]
            if per_vm and all(v is not None for dummy, v in per_vm):
                for i, (dummy, v) in enumerate(per_vm):
                    ax.bar(x, v / scale, bottom=bottom, color=pyplot.cm.tab20(i % 20),
                           edgecolor="white", linewidth=0.5)
                    bottom += v / scale
            else:
                ax.bar(x, h[key]["used"] / scale, color="tab:blue")
            ax.hlines(cap, x - 0.45, x + 0.45, colors="black", linewidth=2)
        ax.set_ylabel("%s%s" % (label, unit and " (%s)" % unit.strip()))
        ax.set_title("%s used (stacked per VM) vs capacity (black line)" % label)
    axes[-1].set_xticks(range(len(hosts)))
    axes[-1].set_xticklabels(hosts, rotation=45, ha="right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    pyplot.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Render a hospital.cloud.placement plan")
    ap.add_argument("--plan", required=True, help="JSON output of the placement filter")
    ap.add_argument("--vms", help="optional JSON list of the VMs (per-VM stacking in the plot)")
    ap.add_argument("--png", help="write the plot here")
    ap.add_argument("--md", help="write the Markdown table here (default: stdout)")
    args = ap.parse_args(argv)
    with open(args.plan, encoding="utf-8") as f:
        plan = json.load(f)
    if args.vms:
        with open(args.vms, encoding="utf-8") as f:
            vms = json.load(f)
        plan["vm_sizes"] = vm_sizes(vms)
    text = markdown(plan)
    if args.md:
        with open(args.md, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    if args.png:
        render_png(plan, args.png)
    return 0


def vm_sizes(vms):
    """``{vm: {vcpus, memory}}`` in the collection's units (memory in MiB) as the placement filter reads
    them (``model.parse_amount``); None for a size it would refuse (that VM's bar is then not stacked)."""
    sizes = {}
    for vm in vms:
        sizes[vm["name"]] = {}
        for dim in ("vcpus", "memory"):
            try:
                sizes[vm["name"]][dim] = parse_amount(vm.get(dim, 0), dim, "vm %s" % vm["name"])
            except PlacementError:
                sizes[vm["name"]][dim] = None
    return sizes


if __name__ == "__main__":
    sys.exit(main())
