#!/usr/bin/env bash
# make test: lint, sanity, unit and integration, with the ops tier (tests/integration/ops: one 3-4 host rack for
# the day-2 and the HA tests, ~45 min, mostly waiting on its rack) running beside the rest instead of after it. Serially make test took
# 4427 s in CI on 2026-12-04, over the 70-minute budget. The two runs share no fixture that could race: the
# ops tier uses only the base image (built under flock) and its own rack; libvirtd and the host-side Ceph
# cluster belong to the other run.
#
# The ops tier's output goes to a log printed at the end, then both summaries, so the tail of the output says
# what failed. Both always run to the end (a rack tier killed half way would leave its rack behind).
# Extra pytest arguments (make test PYTEST_ARGS=...) go to both runs. tests/integration/dr (two clusters, rbd-mirror,
# ~10 min of waiting on mirror snapshots) is left out for the CI budget: make test-dr.
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo" || exit 1
logs=$repo/.cache/make-test
mkdir -p "$logs"
ops_log=$logs/ops.log
rest_log=$logs/rest.log
rm -f "$ops_log" "$rest_log"  # a summary printed at the end must be this run's

bash tests/testbed/pytest.sh tests/integration/ops --durations=15 "$@" > "$ops_log" 2>&1 &
ops_pid=$!
echo "make test: the ops tier runs beside the rest (PID $ops_pid, log $ops_log)"

rest_rc=0
make --no-print-directory lint || rest_rc=$?
if [ "$rest_rc" -eq 0 ]; then make --no-print-directory sanity || rest_rc=$?; fi
if [ "$rest_rc" -eq 0 ]; then
  bash tests/testbed/pytest.sh tests/unit tests/integration --ignore=tests/integration/ops --ignore=tests/integration/dr --durations=30 "$@" \
    2>&1 | tee "$rest_log"
  rest_rc=${PIPESTATUS[0]}
fi

ops_rc=0
wait "$ops_pid" || ops_rc=$?
echo
echo "================================ ops tier (ran beside the rest) ================================"
cat "$ops_log"
echo
echo "make test: lint, sanity, unit and integration without ops: rc=$rest_rc"
[ -f "$rest_log" ] && grep -E "^(FAILED|ERROR) |^=+ .*(passed|failed|error).* =+$" "$rest_log"
echo "make test: ops tier: rc=$ops_rc"
grep -E "^(FAILED|ERROR) |^=+ .*(passed|failed|error).* =+$" "$ops_log"
[ "$rest_rc" -eq 0 ] && [ "$ops_rc" -eq 0 ]
