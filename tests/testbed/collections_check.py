"""Are the collections hospital.cloud needs (galaxy.yml) and its tests need (tests/requirements.yml) installed?

``python tests/testbed/collections_check.py [-v]`` prints (with -v) each requirement with the version Ansible finds
(``ansible-galaxy collection list``: the configured collection paths and the venv's ``ansible`` package)
and exits 1 if one is missing or out of its range, naming the command that installs it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml
from ansible.galaxy.dependency_resolution.versioning import meets_requirements

REPO = Path(__file__).resolve().parents[2]


def required(repo: Path = REPO) -> dict[str, tuple[str, str]]:
    """name -> (version range, the file that asks for it)."""
    out = {name: (str(spec), "galaxy.yml")
           for name, spec in (yaml.safe_load((repo / "galaxy.yml").read_text()).get("dependencies") or {}).items()}
    for c in yaml.safe_load((repo / "tests" / "requirements.yml").read_text())["collections"]:
        out[c["name"]] = (str(c.get("version", "*")), "tests/requirements.yml")
    return out


def installed(ansible_galaxy: str) -> dict[str, str]:
    """name -> version of the copy Ansible uses (the first in collection path order)."""
    res = subprocess.run([ansible_galaxy, "collection", "list", "--format", "json"], capture_output=True,
                         text=True, check=True)
    out: dict[str, str] = {}
    for collections in json.loads(res.stdout).values():
        for name, info in collections.items():
            out.setdefault(name, info.get("version", "*"))
    return out


def problems(need: dict[str, tuple[str, str]], have: dict[str, str]) -> list[str]:
    out = []
    for name, (spec, source) in sorted(need.items()):
        if name not in have:
            out.append("%s %s (%s): not installed" % (name, spec, source))
        elif have[name] != "*" and not meets_requirements(have[name], spec):
            out.append("%s %s (%s): %s installed" % (name, spec, source, have[name]))
    return out


def main() -> int:
    galaxy = str(Path(sys.executable).parent / "ansible-galaxy")
    need, have = required(), installed(galaxy)
    bad = problems(need, have)
    if "-v" in sys.argv[1:]:
        for name, (spec, source) in sorted(need.items()):
            print("collection %s %s (%s): %s" % (name, spec, source, have.get(name, "missing")))
    if bad:
        print("collections missing or out of range:\n  %s\ninstall them with: ansible-galaxy collection install "
              "-r tests/requirements.yml and the dependencies in galaxy.yml" % "\n  ".join(bad), file=sys.stderr)
        return 1
    print("collections: the %d that galaxy.yml and tests/requirements.yml name are installed" % len(need))
    return 0


if __name__ == "__main__":
    sys.exit(main())
