#!/usr/bin/env bash
# make bench: every benchmark prints its figures and the ratios to its baseline, measured in the same
# run. Never part of CI and never gating: absolute times depend on the machine and its load.
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
root=$(bash "$repo/tests/testbed/collection-path.sh")
export ANSIBLE_COLLECTIONS_PATH="$root" PYTHONPATH="$root:$repo/tests${PYTHONPATH:+:$PYTHONPATH}"
py="$repo/.venv/bin/python"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
rc=0
for b in placement ceph libvirt imaging backup; do
  echo; echo "=== bench: $b ==="
  args=()
  [ "$b" = placement ] && [ -n "${BENCH_QUICK:-}" ] && args=(--quick)
  "$py" "$repo/tests/bench/$b/run.py" "${args[@]}" || { echo "bench $b failed"; rc=1; }
done
exit $rc
