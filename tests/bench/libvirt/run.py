"""Benchmark (not gating): a no-op hospital.cloud.libvirt_domain run vs community.libvirt's `virt`
module `command: define` with the equivalent XML, against the real libvirtd, in the same run.

Both run through the same mechanism: tests/testbed/ansible_run.run_module (the module's real
process, as Ansible runs it on a host: interpreter start + imports + libvirt connect + work + JSON
out). The domain is defined once beforehand; each side then runs N times on the unchanged domain
and the median wall time is reported. Run: .venv/bin/python tests/bench/libvirt/run.py [N]
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(TESTS))

from testbed import ansible_run, libvirt  # noqa: E402  pylint: disable=wrong-import-position

NAME = "hc-test-bench"


def timed(fqcn, args):
    t0 = time.monotonic()
    out = ansible_run.run_module(fqcn, args)
    secs = time.monotonic() - t0
    if out.get("failed"):
        raise SystemExit("%s failed: %s" % (fqcn, out.get("msg")))
    return secs, out


def main(argv):
    repeats = int(argv[1]) if len(argv) > 1 else 15
    libvirt.ensure_libvirtd()
    args = {"name": NAME, "uri": libvirt.URI, "domain_type": libvirt.domain_type(), "vcpus": 1, "memory": 64,
            "machine": "pc", "disks": [{"path": "/var/tmp/hc-test-bench.qcow2", "target": "vda"}],
            "interfaces": [{"type": "network", "source": "default"}], "serial_console": True,
            "metadata": {"owner": "bench"}, "shutdown_timeout": 0}
    try:
        _secs, first = timed("hospital.cloud.libvirt_domain", args)
        xml = subprocess.run(["virsh", "-c", libvirt.URI, "dumpxml", "--inactive", NAME], capture_output=True,
                             text=True, check=True).stdout
        virt_args = {"command": "define", "xml": xml, "uri": libvirt.URI}
        ours, theirs, changed = [], [], {"hospital.cloud.libvirt_domain": 0, "community.libvirt.virt": 0}
        for _rep in range(repeats):  # interleaved, so both see the same machine load
            secs, out = timed("hospital.cloud.libvirt_domain", args)
            ours.append(secs)
            changed["hospital.cloud.libvirt_domain"] += bool(out["changed"])
            secs, out = timed("community.libvirt.virt", virt_args)
            theirs.append(secs)
            changed["community.libvirt.virt"] += bool(out.get("changed"))
        report = {
            "what": "no-op run on an unchanged defined domain (real libvirtd, %s), module process wall time"
                    % libvirt.URI,
            "repeats": repeats,
            "hospital.cloud.libvirt_domain_median_s": round(statistics.median(ours), 3),
            "community.libvirt.virt_define_median_s": round(statistics.median(theirs), 3),
            "ratio_ours_over_virt": round(statistics.median(ours) / statistics.median(theirs), 2),
            "reported_changed_runs": changed,
            "first_define_changed": first["changed"],
        }
        print(json.dumps(report, indent=2))
    finally:
        subprocess.run(["virsh", "-c", libvirt.URI, "undefine", NAME], capture_output=True, check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
