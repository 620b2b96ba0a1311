"""The worker: a controlling process that claims jobs and a process pool that runs the pipeline.

Only job ids and locators (paths, object names) cross the process boundary, and a small result
dict comes back; each pool process reads its input and writes its outputs itself.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import logging
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, ThreadPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

import cv2

try:
    import blake3 as _blake3
except ImportError:  # the sha256 checksum still works without it
    _blake3 = None

from hospital_imaging import __version__, decode
from hospital_imaging import pipeline as pipeline_mod
from hospital_imaging.errors import ImagingError, SourceError
from hospital_imaging.logs import event
from hospital_imaging.sources import output_names, task_io

# ----------------------------------------------------------------------------------------------
# Pool-process side

_CHILD = {"io": None, "spec": None, "pipeline": None, "writer": None}


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(3)  # controlling process died (SIGKILL): do not linger as an orphan


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3   # glibc mallopt parameters (malloc.h)


def tune_malloc(mmap_threshold: int = 32 << 20, trim_threshold: int = 256 << 20) -> bool:
    """Keep freed image buffers in the heap for the next image (glibc; elsewhere a no-op).

    With glibc's defaults every multi-megabyte array of an image (decode buffer, grey, edges,
    PNG buffers) is either a fresh mmap or heap that free() trimmed back to the kernel, so the next
    image page-faults all of it in again: measured ~1000 faults and 2-4 ms of system time per image
    on the benchmark's set (15-20 % of its CPU). Buffers below ``mmap_threshold`` now come from the
    heap and up to ``trim_threshold`` bytes of free heap are kept: ~10 MB more resident memory per
    pool process, no faults in steady state. Arrays above 32 MiB still use mmap (and go back at once).
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(M_MMAP_THRESHOLD, mmap_threshold)) and bool(mallopt(M_TRIM_THRESHOLD, trim_threshold))


def init_child(parent: int) -> None:
    """Pool initializer: one OpenCV thread per process, malloc tuned for image buffers, ignore
    SIGTERM/SIGINT (the parent decides)."""
    cv2.setNumThreads(1)
    tune_malloc()
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()


def _child_io(spec: dict):
    if _CHILD["spec"] != spec:
        _CHILD["io"] = task_io(spec)
        _CHILD["spec"] = spec
    return _CHILD["io"]


def _child_pipeline(definition: dict) -> pipeline_mod.Pipeline:
    """The built pipeline of ``definition``, cached for the last definition seen: the same dict (one
    batch) is matched by identity, a new batch's equal dict by its serialisation."""
    last = _CHILD["pipeline"]  # (definition, its key, the pipeline); holding the dict keeps its id unique
    if last is not None and last[0] is definition:
        return last[2]
    key = json.dumps(definition, sort_keys=True)
    found = last[2] if last is not None and last[1] == key else pipeline_mod.build(definition)
    _CHILD["pipeline"] = (definition, key, found)
    return found


# Checksums of sources and outputs in the sidecar. BLAKE3 (default) is a 256-bit cryptographic hash
# like SHA-256, ~4x faster here in one thread (8 MB: 0.95 ms against 4.1 ms with SHA-NI): SHA-256
# of an uncompressed 2048x2048 16-bit image was a third of the whole job's CPU time.
# sha256 stays selectable (``--checksum sha256``) for sites whose audit tools expect it.
CHECKSUMS = ("blake3", "sha256")


def checksum(algorithm: str, data: bytes) -> str:
    """Hex digest of ``data`` with ``algorithm`` (one of CHECKSUMS)."""
    if algorithm == "blake3":
        if _blake3 is None:
            raise SourceError("checksum blake3 needs the Python package blake3 (or choose sha256)")
        return _blake3.blake3(data).hexdigest()
    if algorithm == "sha256":
        return hashlib.sha256(data).hexdigest()
    raise SourceError("unknown checksum %r (choose one of %s)" % (algorithm, ", ".join(CHECKSUMS)))


def sidecar_for(job: str, data: bytes, pipe: pipeline_mod.Pipeline, result: pipeline_mod.Result,
                names: dict, worker: str, digest: str | None = None, algorithm: str = "blake3") -> dict:
    """The JSON sidecar: the checksum algorithm, source checksum (``digest``: of ``data`` if known),
    pipeline version and hash, outputs with their checksums, timings, statistics."""
    outputs = {}
    for kind, blob in result.outputs.items():
        outputs[kind] = {"name": names[kind], algorithm: checksum(algorithm, blob), "bytes": len(blob),
                         "bits": result.info["output_bits"][kind], "format": "png"}
    source = dict(result.info["source"], bytes=len(data))
    source[algorithm] = digest or checksum(algorithm, data)
    return {"schema": 1, "job": job, "checksum": algorithm, "source": source,
            "pipeline": {"name": pipe.name, "version": pipe.version, "hash": pipe.hash,
                         "package_version": __version__, "steps": result.info["steps"]},
            "window": result.info["window"], "outputs": outputs,
            "timings_ms": result.info["timings_ms"], "stats": result.info["stats"], "worker": worker,
            "created": round(time.time(), 3)}


def _sidecar_bytes(sidecar: dict) -> bytes:
    # one line: json's C encoder (indent= falls back to the pure-Python one, ~5x slower, which
    # was a tenth of a small image's whole processing time)
    return json.dumps(sidecar, sort_keys=True, separators=(",", ":")).encode() + b"\n"


def _classify(out: dict, exc: BaseException) -> None:
    if isinstance(exc, ImagingError):
        out.update(status="failed", code=exc.code, reason=exc.reason)
    elif isinstance(exc, SourceError):
        out.update(status="lost", reason=str(exc))
    else:
        out.update(status="failed", code="internal", reason="internal error: %s" % type(exc).__name__)


def _child_writer() -> ThreadPoolExecutor:
    """One background thread per pool process that writes outputs while the next image is computed."""
    if _CHILD.get("writer") is None:
        _CHILD["writer"] = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hospital-imaging-write")
    return _CHILD["writer"]


def process_one(spec: dict, definition: dict, job: str, locator: str, writer=None) -> dict:
    """Fetch, check for a committed identical output, run, write. Never raises.

    With ``writer`` (an executor) the outputs are written in the background: the result then holds
    a ``pending`` future that ``finish_one`` waits for; the job counts as done only after that.
    """
    started = time.time()
    t0 = time.perf_counter()
    out = {"job": job, "pid": os.getpid(), "t_start": round(started, 4)}
    try:
        pipe = _child_pipeline(definition)
        io = _child_io(spec)
        algorithm = spec.get("checksum", "blake3")
        data = io.fetch(locator)
        digest = checksum(algorithm, data)
        previous = io.read_sidecar(job)
        if previous and previous.get("source", {}).get(algorithm) == digest \
                and previous.get("pipeline", {}).get("hash") == pipe.hash:
            out.update(status="ok", skipped=True)  # duplicate delivery: outputs already committed
        else:
            result = pipeline_mod.run(pipe, data, locator)
            names = output_names(job, result.outputs)
            sidecar = sidecar_for(job, data, pipe, result, names, spec.get("worker_id", ""), digest, algorithm)
            files = {names[k]: v for k, v in result.outputs.items()}
            if writer is None:
                io.write_outputs(job, files, _sidecar_bytes(sidecar))
            else:
                out["pending"] = writer.submit(io.write_outputs, job, files, _sidecar_bytes(sidecar))
            out.update(status="ok", skipped=False)
    except Exception as exc:  # pylint: disable=broad-exception-caught
        _classify(out, exc)
    out["t0"] = t0
    return finish_one(out) if writer is None else out


def finish_one(out: dict) -> dict:
    """Wait for the job's background write (if any); fill in its end time and duration."""
    pending = out.pop("pending", None)
    if pending is not None:
        try:
            pending.result()
        except Exception as exc:  # pylint: disable=broad-exception-caught
            _classify(out, exc)
    out["seconds"] = time.perf_counter() - out.pop("t0")
    out["t_end"] = round(time.time(), 4)
    return out


def warm() -> int:
    """A no-op task: the pool's processes are started and have imported everything."""
    return os.getpid()


def process_tasks(spec: dict, definition: dict, tasks: list) -> list:
    """One pool task = a batch of (job, locator) pairs.

    Job i+1 is decoded and processed while job i's outputs are written (file creation and renames
    on a busy file system, or RADOS round trips, wait on I/O, not on the CPU). The batch returns
    only when every write has finished, so the controller acknowledges nothing that is not written.
    """
    writer = _child_writer()
    return [finish_one(out) for out in [process_one(spec, definition, job, locator, writer)
                                        for job, locator in tasks]]


# ----------------------------------------------------------------------------------------------
# Controlling process


class Worker:
    """Claims jobs from ``source``, runs them in a process pool, acknowledges or fails them."""

    def __init__(self, source, pipe: pipeline_mod.Pipeline, processes: int | None = None, batch: int = 4,
                 metrics=None, poll: float = 1.0, grace: float = 30.0, pipeline_path: str | None = None,
                 checksum_algorithm: str = "blake3", retention_days: int | None = None,
                 purge_every: float = 600.0):
        checksum(checksum_algorithm, b"")  # an unknown or unavailable algorithm fails here, not per job
        self.checksum = checksum_algorithm
        self.source = source
        self.pipeline = pipe
        self.processes = processes or len(os.sched_getaffinity(0))
        self.batch = max(1, batch)
        self.metrics = metrics
        self.poll = poll
        self.grace = grace
        self.pipeline_path = pipeline_path
        # Retention of finished inputs (PHI) and markers: purged at start and at most every
        # ``purge_every`` seconds (a directory listing or an object listing: not per job).
        self.retention_days = retention_days
        self.purge_every = purge_every
        self._pipeline_mtime = os.stat(pipeline_path).st_mtime if pipeline_path else None
        self.stopping = threading.Event()
        self.counts = {"ok": 0, "failed": 0, "skipped": 0, "released": 0, "lost": 0}
        self._executor = None
        self._breaks = 0  # consecutive pool crashes without a finished job
        self._renew_every = getattr(source, "lease", 0) / 3.0 if getattr(source, "lease", 0) else None
        self.started_at = None    # monotonic: pool started and warm (steady state from here)
        self.finished_at = None   # monotonic: the last pool task's results were acknowledged

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT: stop claiming, finish in-flight work (or release it after ``grace``)."""
        def handler(signum, _frame):
            event("stop_requested", signal=signal.Signals(signum).name)
            self.stopping.set()
        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=self.processes, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=init_child, initargs=(os.getpid(),))

    def _maybe_reload(self) -> None:
        if not self.pipeline_path:
            return
        try:
            mtime = os.stat(self.pipeline_path).st_mtime
        except OSError:
            return
        if mtime == self._pipeline_mtime:
            return
        self._pipeline_mtime = mtime
        try:
            new = pipeline_mod.load(self.pipeline_path)
        except ImagingError as exc:
            event("pipeline_reload_failed", logging.ERROR, reason=exc.reason, kept=self.pipeline.hash)
            return
        self.pipeline = new
        event("pipeline_reloaded", hash=new.hash, version=new.version)

    def _purge(self) -> None:
        """Apply the retention; logs counts only (names are never logged). A failure is logged, not fatal."""
        try:
            counts = self.source.purge(self.retention_days * 86400.0)
        except Exception as exc:  # pylint: disable=broad-exception-caught
            event("retention_purge_failed", logging.WARNING, error=type(exc).__name__)
            return
        event("retention_purged", logging.INFO if any(counts.values()) else logging.DEBUG,
              older_than_days=self.retention_days, **counts)

    def run(self, once: bool = False, progress=None) -> dict:
        """Process until stopped (``once``: until the queue is empty). Returns the counts."""
        spec = dict(self.source.spec(), checksum=self.checksum)
        recovered = self.source.recover()
        png_decoder = decode.png_decoder()
        if decode.PNG_DECODER not in decode.PNG_DECODER_SETTINGS:
            event("png_decoder_setting_unknown", logging.WARNING, variable="HOSPITAL_IMAGING_PNG_DECODER",
                  value=decode.PNG_DECODER, known=list(decode.PNG_DECODER_SETTINGS), png_decoder=png_decoder)
        event("worker_started", worker=spec.get("worker_id"), source=self.source.kind, processes=self.processes,
              batch=self.batch, checksum=self.checksum, fsync=spec.get("fsync", False), pipeline=self.pipeline.hash,
              png_decoder=png_decoder, recovered=recovered, version=__version__)
        self._executor = self._new_executor()
        for fut in [self._executor.submit(warm) for _slot in range(self.processes)]:
            fut.result()
        self.started_at = time.monotonic()
        self.finished_at = None
        inflight = {}          # future -> list of claims
        held = {}              # job -> claim
        last_renew = last_depth = last_recover = time.monotonic()
        last_purge = None
        target = self.processes * 2
        try:
            while True:
                now = time.monotonic()
                if self.retention_days and (last_purge is None or now - last_purge >= self.purge_every):
                    last_purge = now
                    self._purge()
                if not self.stopping.is_set() and len(inflight) < target:
                    wanted = self.batch * (target - len(inflight))
                    claims = self.source.claim(wanted)
                    # A short queue (its end, or a trickle of jobs): one job per task, so that no pool
                    # process sits idle while another works through a whole batch of large images.
                    size = self.batch if len(claims) == wanted else 1
                    for start in range(0, len(claims), size):
                        chunk = claims[start:start + size]
                        for claim in chunk:
                            held[claim.job] = claim
                            event("job_claimed", logging.DEBUG, job=claim.job)
                        fut = self._executor.submit(process_tasks, spec, self.pipeline.to_dict(),
                                                    [(c.job, c.locator) for c in chunk])
                        inflight[fut] = chunk
                if self.metrics is not None:
                    self.metrics.in_flight.set(len(held))
                    if now - last_depth > 2.0:
                        self.metrics.queue_depth.set(self.source.depth())
                        last_depth = now
                if not inflight:
                    if self.stopping.is_set():
                        break
                    if now - last_recover > 5.0 or once:
                        last_recover = now
                        if self.source.recover():
                            continue
                    if once and self.source.depth() == 0:
                        break  # queue drained (jobs claimed by others: their lease or flock decides)
                    self._maybe_reload()
                    self.stopping.wait(self.poll)
                    continue
                done = wait(list(inflight), timeout=0.5, return_when=FIRST_COMPLETED)[0]
                for fut in done:
                    chunk = inflight.pop(fut)
                    self._finish(fut, chunk, held, progress)
                    self.finished_at = time.monotonic()
                if self._renew_every and time.monotonic() - last_renew > self._renew_every:
                    last_renew = time.monotonic()
                    for claim in self.source.renew(list(held.values())):
                        event("claim_lost", logging.WARNING, job=claim.job)
                        claim.extra["lost"] = True
                if self.stopping.is_set() and inflight and time.monotonic() - self._stop_time() > self.grace:
                    event("grace_expired", logging.WARNING, releasing=len(held))
                    break
        finally:
            for claim in list(held.values()):
                self.source.release(claim)
                self.counts["released"] += 1
            self._executor.shutdown(wait=True, cancel_futures=True)
            if self.metrics is not None:
                self.metrics.in_flight.set(0)
            event("worker_stopped", **self.counts)
        return dict(self.counts)

    def _stop_time(self) -> float:
        if not hasattr(self, "_stopped_at"):
            self._stopped_at = time.monotonic()  # pylint: disable=attribute-defined-outside-init
        return self._stopped_at

    def _finish(self, fut, chunk, held, progress) -> None:
        try:
            results = fut.result()
        except BrokenProcessPool:
            self._breaks += 1
            event("pool_broken", logging.ERROR, jobs=[c.job for c in chunk], consecutive=self._breaks)
            for claim in chunk:
                held.pop(claim.job, None)
                self.source.release(claim)
                self.counts["released"] += 1
            self._executor.shutdown(wait=False, cancel_futures=True)
            if self._breaks >= 5:
                raise SourceError("the process pool crashed %d times in a row; giving up" % self._breaks)
            self.stopping.wait(min(30.0, 0.5 * 2 ** self._breaks))  # back off before respawning
            self._executor = self._new_executor()
            return
        self._breaks = 0
        by_job = {c.job: c for c in chunk}
        for res in results:
            claim = by_job[res["job"]]
            held.pop(claim.job, None)
            if claim.extra.get("lost") or res["status"] == "lost":
                self.counts["lost"] += 1
                event("job_lost", logging.WARNING, job=claim.job, reason=res.get("reason", "lease lost"))
                continue
            if res["status"] == "ok":
                self.source.ack(claim, {"skipped": res.get("skipped", False)})
                self.counts["ok"] += 1
                if res.get("skipped"):
                    self.counts["skipped"] += 1
                if self.metrics is not None:
                    self.metrics.processed.inc()
                    self.metrics.latency.observe(res["seconds"])
                event("job_done", job=claim.job, seconds=round(res["seconds"], 4), skipped=res.get("skipped", False),
                      t_claim=round(claim.claimed_at, 4), t_start=res["t_start"], t_end=res["t_end"],
                      t_ack=round(time.time(), 4), pid=res["pid"])
            else:
                self.source.fail(claim, res["code"], res["reason"])
                self.counts["failed"] += 1
                if self.metrics is not None:
                    self.metrics.failed.labels(reason=res["code"]).inc()
                event("job_failed", logging.WARNING, job=claim.job, code=res["code"], reason=res["reason"],
                      t_claim=round(claim.claimed_at, 4), t_ack=round(time.time(), 4))
            if progress is not None:
                progress(self.counts)
