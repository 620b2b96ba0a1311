"""execution-environment.yml: `ansible-builder create` makes a complete build context offline.

Building the image needs podman or docker and the registries (Galaxy is not reachable here). What
runs here, for real and offline: the collection tarball build, `ansible-builder create` (the build
context: Containerfile and _build/), the galaxy stage's install of the tarball with --offline,
ansible-builder's own introspection script (from the context) over the installed collections, and
bindep plus apt-cache on this Debian bookworm machine, the base image's distribution.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from packaging.specifiers import SpecifierSet

from testbed.ansible_run import REPO, VENV_PY

BIN = VENV_PY.parent
EE_FILE = REPO / "execution-environment.yml"
SITE_COLLECTIONS = Path(next(p for p in sys.path if p.endswith("site-packages"))) / "ansible_collections"
# test and lint tools: never in the EE
TEST_ONLY = {"ansible-lint", "molecule", "molecule-plugins", "pytest", "pytest-testinfra", "pytest-timeout",
             "hypothesis", "antsibull-changelog", "ansible-builder", "yamllint", "pylint", "black"}
# third-party imports of the collection's code -> what provides them in the EE
PROVIDERS = {"ortools": ("python", "ortools"), "highspy": ("python", "highspy"),
             "matplotlib": ("python", "matplotlib"), "numpy": ("python", "numpy"),
             "rados": ("system", "python3-rados"), "rbd": ("system", "python3-rbd"),
             "libvirt": ("system", "python3-libvirt")}


def _pins(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = (line.split("==", 1) + [""])[:2]
            out[name.strip().lower().replace("_", "-")] = version.strip()
    return out


def _run(cmd, **kw):
    res = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, check=False, **kw)
    assert res.returncode == 0, "%s\n%s\n%s" % (cmd, res.stdout[-3000:], res.stderr[-3000:])
    return res


@pytest.fixture(scope="module")
def ee():
    return yaml.safe_load(EE_FILE.read_text())


@pytest.fixture(scope="module")
def context(ee, tmp_path_factory):
    """The EE definition and the files it names copied as they are, the tarball built, the context created."""
    work = tmp_path_factory.mktemp("ee")
    deps = ee["dependencies"]
    shutil.copy2(EE_FILE, work / EE_FILE.name)
    for key in ("galaxy", "python", "system"):
        (work / deps[key]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / deps[key], work / deps[key])
    # the documented step: ansible-galaxy collection build --output-path .cache/ee
    dist = work / Path(ee["additional_build_files"][0]["src"]).parent
    _run([BIN / "ansible-galaxy", "collection", "build", "--force", "--output-path", dist, REPO])
    ctx = work / "context"
    res = _run([BIN / "ansible-builder", "create", "-f", work / EE_FILE.name, "-c", ctx,
                "--output-filename", "Containerfile", "-v", "2"], cwd=work)
    assert "No matches" not in res.stdout + res.stderr, res.stdout
    return {"work": work, "ctx": ctx, "dist": dist, "log": res.stdout}


def test_context_has_containerfile_and_requirements(ee, context):
    ctx = context["ctx"]
    build = ctx / "_build"
    for name in ("requirements.yml", "requirements.txt", "bindep.txt", "scripts/assemble",
                 "scripts/introspect.py", "scripts/install-from-bindep"):
        assert (build / name).is_file(), name
    deps = ee["dependencies"]
    assert (build / "requirements.yml").read_text() == (REPO / deps["galaxy"]).read_text()
    assert (build / "requirements.txt").read_text() == (REPO / deps["python"]).read_text()
    assert (build / "bindep.txt").read_text() == (REPO / deps["system"]).read_text()
    version = yaml.safe_load((REPO / "galaxy.yml").read_text())["version"]
    assert [p.name for p in (build / "collections").iterdir()] == ["hospital-cloud-%s.tar.gz" % version]
    containerfile = (ctx / "Containerfile").read_text()
    assert 'ARG EE_BASE_IMAGE="%s"' % ee["images"]["base_image"]["name"] in containerfile
    assert 'ARG PKGMGR="/usr/bin/apt-get"' in containerfile
    assert "RUN apt-get update" in containerfile
    assert "ansible-galaxy collection install --offline" in containerfile
    # stages in order, the galaxy stage copies the context (with the tarball) to /build
    stages = re.findall(r"^FROM \S+ AS (\w+)$", containerfile, re.M)
    assert stages == ["base", "galaxy", "builder", "final"], stages
    assert "COPY _build /build" in containerfile


def test_ansible_core_and_runner_match_requirements_txt(ee, context):
    lock = _pins(REPO / "requirements.txt")
    deps = ee["dependencies"]
    assert deps["ansible_core"]["package_pip"] == "ansible-core==" + lock["ansible-core"]
    assert deps["ansible_runner"]["package_pip"] == "ansible-runner==" + lock["ansible-runner"]
    refs = re.search(r'^ARG ANSIBLE_INSTALL_REFS="(.*)"$', (context["ctx"] / "Containerfile").read_text(), re.M)
    assert refs and refs.group(1).split() == [deps["ansible_core"]["package_pip"], deps["ansible_runner"]["package_pip"]]


def test_python_requirements_are_pinned_runtime_needs(ee):
    lock = _pins(REPO / "requirements.txt")
    reqs = _pins(REPO / ee["dependencies"]["python"])
    assert reqs, "no Python requirements"
    for name, version in reqs.items():
        assert name not in TEST_ONLY, name
        assert version and version == lock.get(name), "%s==%s: requirements.txt pins %s" % (name, version, lock.get(name))


def _third_party_imports() -> set[str]:
    found = set()
    for path in (REPO / "plugins").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in ("ansible", "ansible_collections", "__future__"):
                    found.add(top)
    return found


def test_every_import_of_the_collection_is_provided(ee):
    reqs = _pins(REPO / ee["dependencies"]["python"])
    system = (REPO / ee["dependencies"]["system"]).read_text()
    for top in sorted(_third_party_imports()):
        assert top in PROVIDERS, "plugins import %s: add it to the EE and to PROVIDERS" % top
        kind, name = PROVIDERS[top]
        if kind == "python":
            assert name in reqs, (top, name)
        else:
            assert re.search(r"^%s\b" % re.escape(name), system, re.M), (top, name)


def _installed_collections() -> dict[str, str]:
    out = {}
    for manifest in SITE_COLLECTIONS.glob("*/*/MANIFEST.json"):
        info = json.loads(manifest.read_text())["collection_info"]
        out["%s.%s" % (info["namespace"], info["name"])] = info["version"]
    return out


def test_galaxy_requirements_are_the_tested_versions(ee):
    reqs = {c["name"]: c["version"] for c in yaml.safe_load((REPO / ee["dependencies"]["galaxy"]).read_text())["collections"]}
    installed = _installed_collections()
    for name, version in reqs.items():
        assert installed.get(name) == version, "%s %s: the venv (tested) has %s" % (name, version, installed.get(name))
    for name, spec in yaml.safe_load((REPO / "galaxy.yml").read_text())["dependencies"].items():
        assert name in reqs and reqs[name] in SpecifierSet(spec), (name, spec, reqs.get(name))
    # every collection the roles and playbooks call is installed in the EE
    used = set()
    for path in list((REPO / "roles").rglob("*.yml")) + list((REPO / "playbooks").glob("*.yml")) + [REPO / "site.yml"]:
        text = re.sub(r"(^|\s)#.*$", "", path.read_text(), flags=re.M)  # not in comments
        used |= set(re.findall(r"\b([a-z][a-z0-9_]*\.[a-z][a-z0-9_]*)\.[a-z][a-z0-9_]*\b", text))
    used = {u for u in used if u.split(".")[0] in {"ansible", "community", "awx", "containers", "kubernetes"}}
    missing = used - set(reqs) - {"ansible.builtin", "ansible.legacy"}
    assert not missing, "used but not in %s: %s" % (ee["dependencies"]["galaxy"], sorted(missing))


def test_galaxy_stage_and_introspection_offline(ee, context, tmp_path):
    """The galaxy stage's tarball install (--offline) and the builder stage's introspection, here."""
    coll = tmp_path / "collections"
    (tmp_path / "ansible.cfg").write_text("[defaults]\n")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "ANSIBLE_CONFIG": str(tmp_path / "ansible.cfg")}
    # the requirements from Galaxy: the tested copies stand in (same versions, see the test above)
    reqs = yaml.safe_load((REPO / ee["dependencies"]["galaxy"]).read_text())["collections"]
    for req in reqs:
        ns, name = req["name"].split(".")
        (coll / "ansible_collections" / ns).mkdir(parents=True, exist_ok=True)
        (coll / "ansible_collections" / ns / name).symlink_to(SITE_COLLECTIONS / ns / name)
    (tarball,) = context["dist"].glob("hospital-cloud-*.tar.gz")
    _run([BIN / "ansible-galaxy", "collection", "install", "--offline", "--collections-path", coll, tarball],
         cwd=tmp_path, env=dict(env, ANSIBLE_COLLECTIONS_PATH=str(coll)))
    installed = coll / "ansible_collections" / "hospital" / "cloud"
    assert (installed / "meta" / "execution-environment.yml").is_file()
    build = context["ctx"] / "_build"
    out_pip, out_bindep = tmp_path / "pip.txt", tmp_path / "bindep.txt"
    _run([VENV_PY, build / "scripts" / "introspect.py", "introspect", coll / "ansible_collections" / "..",
          "--user-pip", build / "requirements.txt", "--user-bindep", build / "bindep.txt",
          "--write-pip", out_pip, "--write-bindep", out_bindep], cwd=tmp_path)
    pip_lines = out_pip.read_text()
    assert "from collection hospital.cloud" in pip_lines, pip_lines  # the collection's own EE metadata
    names = {re.split(r"[<>=\s\[;]", line, maxsplit=1)[0].lower() for line in pip_lines.splitlines() if line.strip()}
    assert not names & TEST_ONLY, names & TEST_ONLY
    assert set(_pins(REPO / ee["dependencies"]["python"])) <= names
    # the merged system packages resolve for this platform (Debian) with bindep ...
    listed = _run([BIN / "bindep", "-f", out_bindep, "-l", "newline"], cwd=tmp_path).stdout.split()
    assert {"python3-rados", "python3-rbd", "python3-libvirt"} <= set(listed), listed
    # ... and every one is a package of this Debian release, the base image's (local apt lists)
    release = dict(line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line)
    base = ee["images"]["base_image"]["name"]
    if release.get("VERSION_CODENAME") not in base:
        pytest.skip("apt lists here are %s, the base image is %s" % (release.get("VERSION_CODENAME"), base))
    # one apt-cache call (each costs ~1 s); it names every package it knows
    res = subprocess.run(["apt-cache", "show", "--no-all-versions"] + sorted(set(listed)), capture_output=True,
                         text=True, check=False)
    known = set(re.findall(r"^Package: (\S+)$", res.stdout, re.M))
    assert not set(listed) - known, "not %s packages: %s" % (base, sorted(set(listed) - known))
