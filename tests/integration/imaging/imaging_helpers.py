"""Helpers for the imaging worker integration tests: run its CLI, read its logs, check outputs."""

import functools
import json
import os
import pathlib
import subprocess
import sys

import blake3

from testbed import poll

PKG_ROOT = pathlib.Path(__file__).resolve().parents[3] / "roles" / "imaging_worker" / "files" / "hospital_imaging"


def cli(*args, **kwargs):
    """Start ``python -m hospital_imaging ARGS`` in its own process group; returns the Popen."""
    env = dict(os.environ, PYTHONPATH=str(PKG_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen([sys.executable, "-m", "hospital_imaging"] + [str(a) for a in args],
                            env=env, start_new_session=True, **kwargs)


# the worker logs and moves files within milliseconds: ask often
wait_for = functools.partial(poll.wait_for, interval=0.05)


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
    assert sidecar["checksum"] == "blake3"
    assert sidecar["source"]["blake3"] == blake3.blake3(source).hexdigest()
    assert len(sidecar["pipeline"]["hash"]) == 64
    assert set(sidecar["outputs"]) == set(outputs)
    for kind, blob in outputs.items():
        assert sidecar["outputs"][kind]["blake3"] == blake3.blake3(blob).hexdigest(), kind
