"""The collection builds with ansible-galaxy, installs, and every plugin's docs render."""

from __future__ import annotations

import re
import subprocess

import yaml

from testbed.ansible_run import REPO, VENV_PY

BIN = VENV_PY.parent


def _plugins() -> list[tuple[str, str]]:
    out = []
    for f in sorted((REPO / "plugins" / "modules").glob("*.py")):
        if f.name != "__init__.py":
            out.append(("module", f.stem))
    for f in sorted((REPO / "plugins" / "filter").glob("*.yml")):
        out.append(("filter", f.stem))
    return out


def test_galaxy_metadata():
    meta = yaml.safe_load((REPO / "galaxy.yml").read_text())
    assert (meta["namespace"], meta["name"], meta["version"]) == ("hospital", "cloud", "0.1.0")
    # dependencies: the collections the roles and playbooks call and the plugins import (awx.awx: only
    # awx_setup.yml, run against a controller, in the EE); the ones only tests use: tests/requirements.yml
    used = set()
    for path in [*(REPO / "roles").rglob("*.yml"), *(REPO / "roles").rglob("*.j2"), *(REPO / "playbooks").glob("*.yml"),
                 REPO / "site.yml"]:
        text = re.sub(r"(^|\s)#.*$", "", path.read_text(), flags=re.M)  # not in comments
        used |= set(re.findall(r"\b((?:community|ansible|awx)\.[a-z][a-z0-9_]*)\.[a-z][a-z0-9_]*\b", text))
    for path in (REPO / "plugins").rglob("*.py"):
        used |= set(re.findall(r"\bansible_collections\.([a-z][a-z0-9_]*\.[a-z][a-z0-9_]*)\.", path.read_text()))
    used -= {"ansible.builtin", "ansible.legacy", "awx.awx", "hospital.cloud"}
    assert set(meta["dependencies"]) == used
    test_only = {c["name"] for c in yaml.safe_load((REPO / "tests" / "requirements.yml").read_text())["collections"]}
    assert test_only == {"community.libvirt", "ansible.posix", "community.general"}
    assert not test_only & set(meta["dependencies"])
    runtime = yaml.safe_load((REPO / "meta" / "runtime.yml").read_text())
    assert runtime["requires_ansible"].startswith(">=2.")


def test_build_install_and_ansible_doc(tmp_path):
    plugins = _plugins()
    assert plugins, "the collection ships no module or filter plugin"
    build = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "build", str(REPO),
                            "--output-path", str(tmp_path)], capture_output=True, text=True, check=False)
    assert build.returncode == 0, build.stderr
    tarball = tmp_path / "hospital-cloud-0.1.0.tar.gz"
    assert tarball.exists()
    listing = subprocess.run(["tar", "-tzf", str(tarball)], capture_output=True, text=True, check=True).stdout
    assert "galaxy.yml" not in listing.split()  # built collections carry MANIFEST.json instead
    assert "MANIFEST.json" in listing and ".venv/" not in listing and ".cache/" not in listing
    dest = tmp_path / "installed"
    # outside the checkout (its ansible.cfg points at the checkout itself) and with a clean environment
    (tmp_path / "ansible.cfg").write_text("[defaults]\n")
    clean_env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "ANSIBLE_CONFIG": str(tmp_path / "ansible.cfg")}
    inst = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", "--no-deps", "--force", "-p", str(dest),
                           str(tarball)], capture_output=True, text=True, check=False, cwd=tmp_path, env=clean_env)
    assert inst.returncode == 0, inst.stderr
    assert (dest / "ansible_collections" / "hospital" / "cloud" / "MANIFEST.json").exists()
    env = dict(clean_env, ANSIBLE_COLLECTIONS_PATH=str(dest))
    for kind, name in plugins:
        doc = subprocess.run([str(BIN / "ansible-doc"), "-t", kind, "hospital.cloud." + name],
                             capture_output=True, text=True, env=env, check=False, cwd=tmp_path)
        assert doc.returncode == 0 and "hospital.cloud." + name in doc.stdout, (kind, name, doc.stderr)
