#!/usr/bin/env bash
# Run pytest with the collection on the path; pytest's exit code 5 (no tests collected) is a failure.
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
root=$(bash "$repo/tests/testbed/collection-path.sh")
export ANSIBLE_COLLECTIONS_PATH="$root"
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
cd "$repo" || exit 1
"$repo/.venv/bin/python" -m pytest "$@"
rc=$?
if [ $rc -eq 5 ]; then echo "pytest: no tests were collected (exit 5): treated as failure" >&2; exit 1; fi
exit $rc
