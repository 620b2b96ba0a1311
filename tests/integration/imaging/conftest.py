"""Imaging worker integration tests: the package from its source directory, helpers to run its CLI."""

import hashlib
import json
import os
import pathlib
import subprocess
import sys

import pytest

PKG_ROOT = pathlib.Path(__file__).resolve().parents[3] / "roles" / "imaging_worker" / "files" / "hospital_imaging"
if str(PKG_ROOT) not in sys.path:
    sys.path.insert(0, str(PKG_ROOT))


def cli(*args, **kwargs):
    """Start ``python -m hospital_imaging ARGS`` in its own process group; returns the Popen."""
    env = dict(os.environ, PYTHONPATH=str(PKG_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen([sys.executable, "-m", "hospital_imaging"] + [str(a) for a in args],
                            env=env, start_new_session=True, **kwargs)


def json_lines(text):
    """Parse the JSON log lines of a worker's stderr (ignoring anything else)."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


def check_sidecar(sidecar: dict, source: bytes, outputs: dict):
    """A valid output set: the sidecar names the source checksum and every output's checksum."""
    assert sidecar["source"]["sha256"] == hashlib.sha256(source).hexdigest()
    assert len(sidecar["pipeline"]["hash"]) == 64
    assert set(sidecar["outputs"]) == set(outputs)
    for kind, blob in outputs.items():
        assert sidecar["outputs"][kind]["sha256"] == hashlib.sha256(blob).hexdigest(), kind


@pytest.fixture(name="imaging_cli")
def fixture_imaging_cli():
    """cli() as a fixture: kills the process groups it started if a test stops half-way."""
    started = []

    def start(*args, **kwargs):
        proc = cli(*args, **kwargs)
        started.append(proc)
        return proc
    yield start
    for proc in started:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
            proc.wait()
