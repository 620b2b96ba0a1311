"""The worker's wheel as the imaging_worker role builds it on the controller (tasks/wheel.yml, real pip wheel).

What the wheel holds (exactly the worker's modules and its metadata), that it is built once per content
of the sources and reproducibly, that a change of the sources is a new version (and a build artefact is
not), that the role's files stay untouched, and that the built wheel installs and runs.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from imaging_helpers import PKG_ROOT

PLAY = """
- name: The worker's wheel
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Build
      ansible.builtin.include_role:
        name: hospital.cloud.imaging_worker
        tasks_from: wheel.yml
    - name: Built
      ansible.builtin.debug:
        msg: {version: "{{ __imaging_worker_wheel_version }}", name: "{{ __imaging_worker_wheel_name }}"}
"""
BUILD_TASK = "Wheel | pip wheel"
DIST_INFO = {"METADATA", "WHEEL", "entry_points.txt", "top_level.txt", "RECORD"}
ARTEFACTS = re.compile(r"(^|/)(__pycache__|build|dist|[^/]*\.egg-info)(/|$)|\.py[co]$")


def _build(run_playbook, cache: Path, **extra):
    res = run_playbook(PLAY, extra_vars=dict(imaging_worker_wheel_cache_dir=str(cache), **extra))
    assert res.rc == 0, res.stdout[-3000:] + res.stderr[-2000:]
    built = res.result("Built")["msg"]
    return res, built, cache / built["name"]


def _modules(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in (root / "hospital_imaging").rglob("*.py")
            if not ARTEFACTS.search(p.relative_to(root).as_posix())}


@pytest.fixture(scope="module", name="wheel")
def fixture_wheel(run_playbook, tmp_path_factory):
    cache = tmp_path_factory.mktemp("wheels")
    res, built, path = _build(run_playbook, cache)
    return {"res": res, "version": built["version"], "path": path, "cache": cache}


def test_wheel_holds_exactly_the_worker_modules(wheel):
    base = re.search(r'^__version__ = "([^"]+)"', (PKG_ROOT / "hospital_imaging" / "__init__.py").read_text(), re.M)[1]
    assert re.fullmatch(re.escape(base) + r"\+h[0-9a-f]{12}", wheel["version"]), wheel["version"]
    assert wheel["path"].name == "hospital_imaging-%s-py3-none-any.whl" % wheel["version"]
    info = "hospital_imaging-%s.dist-info/" % wheel["version"]
    with zipfile.ZipFile(wheel["path"]) as zf:
        names = set(zf.namelist())
        meta = zf.read(info + "METADATA").decode()
        entry_points = zf.read(info + "entry_points.txt").decode()
    assert names == _modules(PKG_ROOT) | {info + n for n in DIST_INFO}, sorted(names ^ _modules(PKG_ROOT))
    assert "Version: %s\n" % wheel["version"] in meta
    requires = sorted(re.findall(r"^Requires-Dist: ([A-Za-z0-9_.-]+) \(", meta, re.M))
    assert requires == ["PyYAML", "blake3", "numpy", "opencv-python-headless", "prometheus-client", "pydicom"]
    assert "hospital-imaging = hospital_imaging.cli:main" in entry_points
    # built in a copy: nothing written into the role's files
    assert not [p for p in PKG_ROOT.iterdir() if p.name in ("build", "dist", "setup.cfg") or p.name.endswith(".egg-info")]
    assert wheel["res"].changed() == 0  # a cache on the controller, no managed state


def test_declared_package_data_exists():
    """Every data pattern pyproject.toml declares matches files (the wheel holds what the worker needs)."""
    tool = tomllib.loads((PKG_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    for package, patterns in tool.get("package-data", {}).items():
        for pattern in patterns:
            assert list((PKG_ROOT / package.replace(".", "/")).glob(pattern)), "%s: %s matches nothing" % (package, pattern)
    assert tool.get("include-package-data") is False, "only the declared files, not whatever lies in the packages"


def test_built_once_per_content_and_reproducibly(wheel, run_playbook, tmp_path):
    again = run_playbook(PLAY, extra_vars={"imaging_worker_wheel_cache_dir": str(wheel["cache"])})
    assert again.rc == 0 and again.changed() == 0
    assert again.result(BUILD_TASK).get("skipped"), "rebuilt although the cache holds this version"
    dummy, built, path = _build(run_playbook, tmp_path / "elsewhere")
    assert built["version"] == wheel["version"]
    assert path.read_bytes() == wheel["path"].read_bytes(), "another build of the same sources differs"


def test_a_source_change_is_a_new_version_a_build_artefact_is_not(wheel, run_playbook, tmp_path):
    pkg = tmp_path / "hospital_imaging"
    shutil.copytree(PKG_ROOT, pkg, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    (pkg / "build" / "lib").mkdir(parents=True)
    (pkg / "build" / "lib" / "stale.py").write_text("x = 1\n")
    (pkg / "hospital_imaging" / "__pycache__").mkdir(exist_ok=True)
    (pkg / "hospital_imaging" / "__pycache__" / "cli.cpython-311.pyc").write_bytes(b"\0")
    dummy, same, path = _build(run_playbook, tmp_path / "c1", __imaging_worker_pkg_dir=str(pkg))
    assert same["version"] == wheel["version"]
    with zipfile.ZipFile(path) as zf:
        assert not [n for n in zf.namelist() if "stale" in n or n.endswith(".pyc")]
    errors = pkg / "hospital_imaging" / "errors.py"
    errors.write_text(errors.read_text() + "\n# changed\n")
    dummy, changed, path = _build(run_playbook, tmp_path / "c2", __imaging_worker_pkg_dir=str(pkg))
    assert changed["version"] != wheel["version"] and changed["version"].split("+")[0] == wheel["version"].split("+")[0]
    assert path.exists()


def test_the_wheel_installs_and_runs(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target", str(target),
                    str(wheel["path"])], check=True, timeout=300)
    pipeline = tmp_path / "pipeline.yml"
    pipeline.write_text("name: t\nversion: '1'\nsteps: [read, grey, {write: {outputs: [image]}}]\n")
    env = {"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-m", "hospital_imaging", "check-pipeline", str(pipeline)], env=env,
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    where = subprocess.run([sys.executable, "-c", "import hospital_imaging; print(hospital_imaging.__file__)"], env=env,
                           capture_output=True, text=True, timeout=60, check=True).stdout
    assert where.startswith(str(target)), where
    assert (target / "bin" / "hospital-imaging").exists()
