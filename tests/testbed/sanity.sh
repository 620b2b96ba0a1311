#!/usr/bin/env bash
# Run `ansible-test sanity` (empty ignore files) on a snapshot of the working tree.
# ansible-test needs the tree at .../ansible_collections/hospital/cloud inside a git checkout and
# downloads a get-pip bootstrap from a host this machine cannot reach; we provide the cached copy
# it looks for first (a stand-in that uses ensurepip + pip from the package registry).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
venv="$repo/.venv"
py_ver=$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
mkdir -p "$repo/.cache/sanity"
run_dir=$(mktemp -d "$repo/.cache/sanity/run-XXXXXX")   # one snapshot per run: concurrent runs don't collide
trap 'rm -rf "$run_dir"' EXIT
snap="$run_dir/ansible_collections/hospital/cloud"

# 1. get-pip stand-in for every pip version ansible-test might ask for
cache="$HOME/.ansible/test/cache"
mkdir -p "$cache"
pip_ver=$(grep -oP "^\s+pip='\K[0-9.]+" "$("$venv/bin/python" -c 'import ansible_test, os; print(os.path.dirname(ansible_test.__file__))')/_internal/python_requirements.py" | head -1)
[ -n "$pip_ver" ] || { echo "sanity: cannot read ansible-test's pip version" >&2; exit 1; }
cat > "$cache/get_pip_${pip_ver//./_}.py" <<'PY'
# Stand-in for get-pip.py (the real one is downloaded from a host this machine cannot reach).
import subprocess, sys
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"])
if args:
    subprocess.check_call([sys.executable, "-m", "pip", "install", "--disable-pip-version-check"] + args)
PY

# 2. snapshot of tracked + new (not ignored) files as its own git checkout
mkdir -p "$snap"
(cd "$repo" && git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done | rsync -a --from0 --files-from=- ./ "$snap/")
cd "$snap"
git init -q . && git add -A && git -c user.name=sanity -c user.email=sanity@localhost commit -qm snapshot

# 3. empty ignore files are the rule: fail if any has content
for f in tests/sanity/ignore-*.txt; do
  [ -e "$f" ] || continue
  if grep -qv '^\s*$' "$f"; then echo "sanity: $f is not empty" >&2; exit 1; fi
done

"$venv/bin/ansible-test" sanity --venv --requirements --python "$py_ver" --color no "$@"
