#!/usr/bin/env bash
# Make this checkout visible as ansible_collections/hospital/cloud (no install needed).
# Prints the collections root to put on ANSIBLE_COLLECTIONS_PATH / sys.path.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
root="$repo/.cache/collections"
mkdir -p "$root/ansible_collections/hospital"
link="$root/ansible_collections/hospital/cloud"
if [ "$(readlink "$link" 2>/dev/null)" != "$repo" ]; then
  rm -f "$link"
  ln -s "$repo" "$link"
fi
echo "$root"
