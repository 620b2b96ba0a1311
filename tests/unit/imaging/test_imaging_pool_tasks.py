"""A pool task (batch) run in this process: outputs are written in the background while the next
image is computed, but the batch's results come back only once every output set is committed."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import blake3
import numpy as np
import pytest

import hospital_imaging

from hospital_imaging import pipeline as P
from hospital_imaging import worker as W
from hospital_imaging.errors import SourceError
from hospital_imaging.sources.spool import SpoolSource, SpoolTaskIO
from hospital_imaging.synthetic import phantom, png_bytes
from imaging_ids import jid

EDGES = P.load("name: edges\nsteps: [read, grey, canny, {write: {outputs: [edges, image]}}]\n")


@pytest.fixture(name="spool")
def fixture_spool(tmp_path):
    spool = SpoolSource(str(tmp_path / "spool"), worker_id="unit")
    yield spool
    spool.close()


def test_batch_returns_after_every_output_is_committed(spool):
    jobs = {"a.png": png_bytes(phantom(256, 8, seed=1)), "b.png": png_bytes(phantom(300, 16, seed=2)),
            "bad.png": b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "c.png": png_bytes(phantom(64, 8, seed=3))}
    jobs = {jid(name): data for name, data in jobs.items()}
    for job, data in jobs.items():
        spool.submit(job, data)
    claims = spool.claim(10)
    results = W.process_tasks(spool.spec(), EDGES.to_dict(), [(c.job, c.locator) for c in claims])
    assert [r["job"] for r in results] == [c.job for c in claims]
    by_job = {r["job"]: r for r in results}
    assert by_job[jid("bad.png")]["status"] == "failed" and by_job[jid("bad.png")]["code"] == "corrupt"
    outbox = os.path.join(spool.root, "outbox")
    for job in map(jid, ("a.png", "b.png", "c.png")):
        res = by_job[job]
        assert res["status"] == "ok" and not res["skipped"] and res["seconds"] > 0 and res["t_end"] >= res["t_start"]
        assert "pending" not in res and "t0" not in res
        with open(os.path.join(outbox, job + ".json"), "rb") as handle:
            sidecar = json.loads(handle.read())
        assert sidecar["checksum"] == "blake3"  # the default
        assert sidecar["source"]["blake3"] == blake3.blake3(jobs[job]).hexdigest()
        for kind, entry in sidecar["outputs"].items():
            with open(os.path.join(outbox, entry["name"]), "rb") as handle:
                assert blake3.blake3(handle.read()).hexdigest() == entry["blake3"], kind
    assert sorted(os.listdir(outbox)) == sorted("%s.%s" % (j, s) for j in map(jid, ("a.png", "b.png", "c.png"))
                                                for s in ("edges.png", "image.png", "json"))
    assert os.listdir(os.path.join(spool.root, "tmp")) == []  # no partial file left behind
    # the same jobs again (duplicate delivery): acknowledged without work, outputs untouched
    again = W.process_tasks(spool.spec(), EDGES.to_dict(), [(c.job, c.locator) for c in claims if c.job != jid("bad.png")])
    assert all(r["status"] == "ok" and r["skipped"] for r in again)


def test_a_failed_background_write_fails_that_job_only(spool):
    for i in range(3):
        spool.submit("j%d.png" % i, png_bytes(phantom(96, 8, seed=i)))
    claims = spool.claim(3)
    shutil.rmtree(os.path.join(spool.root, "outbox"))  # every rename into outbox/ now fails
    results = W.process_tasks(spool.spec(), EDGES.to_dict(), [(c.job, c.locator) for c in claims])
    assert [(r["status"], r["code"]) for r in results] == [("failed", "internal")] * 3
    assert all("FileNotFoundError" in r["reason"] for r in results)
    os.mkdir(os.path.join(spool.root, "outbox"))
    results = W.process_tasks(spool.spec(), EDGES.to_dict(), [(c.job, c.locator) for c in claims])
    assert [r["status"] for r in results] == ["ok"] * 3


def test_sidecar_is_one_json_line_with_the_source_checksum(spool):
    data = png_bytes(np.full((32, 32), 9, np.uint8))
    spool.submit(jid("flat.png"), data)
    claim = spool.claim(1)[0]
    assert W.process_one(spool.spec(), EDGES.to_dict(), claim.job, claim.locator)["status"] == "ok"
    with open(os.path.join(spool.root, "outbox", jid("flat.png") + ".json"), "rb") as handle:
        body = handle.read()
    assert body.endswith(b"\n") and body.count(b"\n") == 1
    sidecar = json.loads(body)
    assert sidecar["source"]["blake3"] == blake3.blake3(data).hexdigest()
    assert sidecar["stats"]["input"]["std"] == 0.0 and sidecar["stats"]["image"] == sidecar["stats"]["input"]


def test_sha256_checksums_when_chosen_and_a_change_of_algorithm_reprocesses(spool):
    data = png_bytes(phantom(64, 8, seed=5))
    spool.submit(jid("s.png"), data)
    claim = spool.claim(1)[0]
    spec = dict(spool.spec(), checksum="sha256")
    assert W.process_one(spec, EDGES.to_dict(), claim.job, claim.locator)["skipped"] is False
    with open(os.path.join(spool.root, "outbox", jid("s.png") + ".json"), "rb") as handle:
        sidecar = json.loads(handle.read())
    assert sidecar["checksum"] == "sha256" and "blake3" not in sidecar["source"]
    assert sidecar["source"]["sha256"] == hashlib.sha256(data).hexdigest()
    with open(os.path.join(spool.root, "outbox", sidecar["outputs"]["edges"]["name"]), "rb") as handle:
        assert hashlib.sha256(handle.read()).hexdigest() == sidecar["outputs"]["edges"]["sha256"]
    assert W.process_one(spec, EDGES.to_dict(), claim.job, claim.locator)["skipped"] is True
    # the sidecar has no blake3 digest to compare: processed again (same outputs), never skipped wrongly
    assert W.process_one(spool.spec(), EDGES.to_dict(), claim.job, claim.locator)["skipped"] is False


@pytest.mark.parametrize("algorithm", ["md5", "", "SHA256"])
def test_an_unknown_checksum_is_refused_before_any_job(spool, algorithm):
    with pytest.raises(SourceError, match="unknown checksum"):
        W.Worker(spool, EDGES, processes=1, checksum_algorithm=algorithm)
    assert spool.depth() == 0 and os.listdir(os.path.join(spool.root, "claimed")) == []


def test_no_result_before_its_outputs_are_written_even_on_a_slow_disk(spool, monkeypatch):
    """The controller acknowledges a job when its batch returns: every write must be finished then."""
    write = SpoolTaskIO.write_outputs

    def slow_write(self, job, files, sidecar):
        time.sleep(0.3)  # a file system that stalls on metadata (seen here: 2 ms per create under load)
        write(self, job, files, sidecar)
    monkeypatch.setattr(SpoolTaskIO, "write_outputs", slow_write)
    for i in range(3):
        spool.submit("s%d.png" % i, png_bytes(phantom(64, 8, seed=i)))
    claims = spool.claim(3)
    results = W.process_tasks(spool.spec(), EDGES.to_dict(), [(c.job, c.locator) for c in claims])
    assert [r["status"] for r in results] == ["ok"] * 3
    for claim in claims:
        assert os.path.exists(os.path.join(spool.root, "outbox", claim.job + ".json"))
    assert min(r["seconds"] for r in results) >= 0.3  # a job's time includes its write


_FAULTS = """
import resource, sys
import numpy as np
sys.path.insert(0, %r)
from hospital_imaging.worker import tune_malloc
if sys.argv[1] == "tuned":
    assert tune_malloc()


def image():  # the buffers of one 2048x2048 16-bit image: decoded, 8-bit, edges, its PNG input
    arrays = [np.ones((2048, 2048), np.uint16), np.ones((2048, 2048), np.uint8), np.ones((2048, 2048), np.uint8),
              np.ones(6 << 20, np.uint8)]
    return sum(a.nbytes for a in arrays)


for _ in range(3):
    image()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    image()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def test_tuned_malloc_reuses_image_buffers_instead_of_faulting_them_in_again():
    code = _FAULTS % os.path.dirname(os.path.dirname(W.__file__))
    faults = {mode: int(subprocess.run([sys.executable, "-c", code, mode], check=True, capture_output=True,
                                       text=True).stdout) for mode in ("default", "tuned")}
    assert faults["default"] > 20 * 1000  # glibc's defaults: trimmed and faulted in again for each image
    assert faults["tuned"] < 200, faults


def test_cli_refuses_an_unknown_checksum_with_a_clear_message(tmp_path):
    root = tmp_path / "spool"
    spool = SpoolSource(str(root))
    job = spool.submit("x.png", png_bytes(phantom(64, 8, seed=1)))
    spool.close()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    base = [sys.executable, "-m", "hospital_imaging", "process", "--source", "spool:%s" % root, "--metrics-port", "0"]
    run = subprocess.run(base + ["--checksum", "md5"], capture_output=True, text=True, env=env, check=False)
    assert run.returncode == 2 and "invalid choice: 'md5'" in run.stderr
    config = tmp_path / "worker.yml"
    config.write_text("checksum: crc32\n")
    run = subprocess.run(base + ["--config", str(config)], capture_output=True, text=True, env=env, check=False)
    assert run.returncode == 2 and "unknown checksum 'crc32'" in run.stderr and "Traceback" not in run.stderr
    assert os.listdir(root / "inbox") == [job] and os.listdir(root / "outbox") == []  # nothing touched


def test_the_end_of_the_queue_goes_one_job_per_task(spool, monkeypatch):
    """Whole batches while the queue is full; its last jobs one per task, so no process waits idle
    while another works through a whole batch (measured 3-9 % of a 640-image run with batch 8)."""
    sizes = []

    class Recording(ThreadPoolExecutor):  # the pool's tasks, in threads of this process
        def submit(self, fn, /, *args, **kwargs):
            if fn is W.process_tasks:
                sizes.append(len(args[2]))
            return super().submit(fn, *args, **kwargs)
    monkeypatch.setattr(W.Worker, "_new_executor", lambda self: Recording(max_workers=self.processes))
    for i in range(22):
        spool.submit("j%02d.png" % i, png_bytes(phantom(64, 8, seed=i)))
    counts = W.Worker(spool, EDGES, processes=2, batch=4, poll=0.01).run(once=True)
    assert counts["ok"] == 22 and sum(sizes) == 22
    assert sizes[:4] == [4, 4, 4, 4], sizes  # 2 processes x 2 batches in flight, full batches
    assert sizes[-2:] == [1, 1], sizes


_THREADS = r"""
import json, os, sys, time
sys.path.insert(0, %r)
import hospital_imaging
import hospital_imaging.worker as W
from hospital_imaging import pipeline as P
def threads(pid):
    return sorted(open("/proc/%%d/task/%%s/comm" %% (pid, t)).read().strip() for t in os.listdir("/proc/%%d/task" %% pid))
def nap():
    time.sleep(0.5)
    return W.warm()
def environ(pid):
    with open("/proc/%%d/environ" %% pid, "rb") as handle:
        pairs = [item.split(b"=", 1) for item in handle.read().split(b"\0") if b"=" in item]
    return {k.decode(): v.decode() for k, v in pairs if k.decode() in hospital_imaging.BLAS_THREAD_VARIABLES}
if __name__ == "__main__":
    controller = threads(os.getpid())  # numpy and cv2 are loaded: any BLAS thread exists by now
    worker = W.Worker(None, P.default(), processes=2)
    pool = worker._new_executor()
    pids = sorted({f.result() for f in [pool.submit(nap) for _ in range(2)]})  # both busy at once: 2 processes
    print(json.dumps({"controller": controller, "pool": [threads(p) for p in pids],
                      "pool_env": [environ(p) for p in pids]}))
    pool.shutdown()
"""


@pytest.mark.parametrize("preset", [None, "2"])
def test_no_blas_threads_in_the_controller_or_the_pool_unless_the_administrator_sets_them(tmp_path, preset):
    """numpy's and OpenCV's OpenBLAS would start cores - 1 threads each in every process (2 x 63 per
    pool process on a 64-core host); the package sets the thread count to 1 before they load. The
    environment is checked as well as the thread list: on a 1-core machine OpenBLAS starts no extra
    thread either way."""
    script = tmp_path / "threads.py"
    script.write_text(_THREADS % os.path.dirname(os.path.dirname(W.__file__)))
    env = {k: v for k, v in os.environ.items() if k not in hospital_imaging.BLAS_THREAD_VARIABLES}
    if preset:
        env["OPENBLAS_NUM_THREADS"] = preset
    out = json.loads(subprocess.run([sys.executable, str(script)], check=True, capture_output=True, text=True,
                                    env=env, timeout=120).stdout)
    assert len(out["pool"]) == 2
    expected = dict.fromkeys(hospital_imaging.BLAS_THREAD_VARIABLES, "1")
    if preset:
        expected["OPENBLAS_NUM_THREADS"] = preset  # an explicit setting is kept
    assert out["pool_env"] == [expected, expected]
    if not preset:
        # the controller: its main thread only; a pool process: main + the parent watcher
        assert len(out["controller"]) == 1, out
        assert [len(threads) for threads in out["pool"]] == [2, 2], out
