"""Command line: ``run`` (service), ``process`` (one batch, progress bar), ``submit``, ``status``.

Options may also come from a YAML file (``--config``; keys are the long option names with '_').
Exit codes: 0 success, 1 some jobs failed (process), 2 bad configuration or unusable source.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import yaml

from hospital_imaging import __version__
from hospital_imaging import pipeline as pipeline_mod
from hospital_imaging.errors import ImagingError, SourceError
from hospital_imaging.logs import event, setup
from hospital_imaging.sources import is_opaque, opaque_job_id, open_source
from hospital_imaging.worker import CHECKSUMS

DEFAULTS = {"source": None, "ceph_conf": "/etc/ceph/ceph.conf", "keyring": None, "client": "client.admin",
            "lease": 30.0, "worker_id": None, "log_level": "info", "pipeline": None, "processes": 0, "batch": 4,
            "metrics_port": None, "metrics_bind": "127.0.0.1", "poll": 1.0, "grace": 30.0, "progress": None,
            "replace": False, "id": None, "checksum": "blake3", "fsync": False,
            "retention_days": 30}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hospital-imaging", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", help="YAML file with option values (command line wins)")
    common.add_argument("--source", help="spool:/path/to/spool or rados:POOL")
    common.add_argument("--ceph-conf", help="ceph.conf (rados source)")
    common.add_argument("--keyring", help="keyring of the client (rados source)")
    common.add_argument("--client", help="cephx client name, e.g. client.imaging")
    common.add_argument("--lease", type=float, help="claim lease in seconds (rados source)")
    common.add_argument("--worker-id", help="stable worker name (default: host-pid-random)")
    common.add_argument("--log-level", choices=("debug", "info", "warning", "error"))
    common.add_argument("--fsync", action=argparse.BooleanOptionalAction,
                        help="spool source: outputs, sidecars and submitted inputs are fsync'ed with their "
                             "directory before a job is acknowledged or a submission returns, so a power loss "
                             "loses no acknowledged job (default off; the imaging_worker role turns it on)")
    work = argparse.ArgumentParser(add_help=False)
    work.add_argument("--pipeline", help="pipeline YAML (default: built-in)")
    work.add_argument("--processes", type=int, help="pool size (default: usable cores)")
    work.add_argument("--batch", type=int, help="jobs per pool task")
    work.add_argument("--metrics-port", type=int, help="Prometheus endpoint port (0: any free port)")
    work.add_argument("--metrics-bind", help="Prometheus endpoint address (default 127.0.0.1)")
    work.add_argument("--poll", type=float, help="seconds between polls of an empty queue")
    work.add_argument("--grace", type=float, help="seconds to finish in-flight jobs after SIGTERM")
    work.add_argument("--retention-days", type=int,
                      help="inputs in done/ and failed/ (spool) and done/failed objects (RADOS) older than this many "
                           "days are deleted, checked at start and every 10 minutes; outputs are kept (default %d)"
                      % DEFAULTS["retention_days"])
    work.add_argument("--checksum", choices=CHECKSUMS,
                      help="checksum of sources and outputs in the sidecars (default %s)" % DEFAULTS["checksum"])
    sub.add_parser("run", parents=[common, work], help="process continuously (service)")
    proc = sub.add_parser("process", parents=[common, work], help="process the queue once, then exit")
    proc.add_argument("--progress", action=argparse.BooleanOptionalAction, help="progress bar on stderr")
    submit = sub.add_parser("submit", parents=[common], help="queue image files")
    submit.add_argument("files", nargs="+")
    submit.add_argument("--id", help="job id (one file only): 32 lowercase hex digits plus an optional image "
                                     "extension, e.g. a UUID the producer keeps; default: a new random id")
    submit.add_argument("--replace", action="store_true", help="resubmit an existing job id")
    sub.add_parser("status", parents=[common], help="counts per state (JSON)")
    check = sub.add_parser("check-pipeline", help="validate a pipeline YAML and print its hash")
    check.add_argument("path")
    return parser


def _options(args) -> dict:
    opts = dict(DEFAULTS)
    if getattr(args, "config", None):
        with open(args.config, encoding="utf-8") as handle:
            loaded = yaml.safe_load(handle) or {}
        unknown = set(loaded) - set(DEFAULTS)
        if unknown:
            raise SourceError("%s: unknown option(s) %s" % (args.config, sorted(unknown)))
        opts.update(loaded)
    for key, value in vars(args).items():
        if value is not None and key in opts:
            opts[key] = value
    return opts


def _source(opts: dict):
    if not opts["source"]:
        raise SourceError("no --source given (spool:/path or rados:POOL)")
    if not isinstance(opts["fsync"], bool):
        raise SourceError("fsync must be true or false (got %r)" % (opts["fsync"],))
    return open_source(opts["source"], worker_id=opts["worker_id"], conffile=opts["ceph_conf"],
                       keyring=opts["keyring"], client=opts["client"], lease=opts["lease"], fsync=opts["fsync"])


class Progress:
    """A one-line progress bar on stderr."""

    def __init__(self, total: int, stream=None):
        self.total = max(total, 1)
        self.stream = stream or sys.stderr
        self.start = time.monotonic()

    def __call__(self, counts: dict) -> None:
        done = counts["ok"] + counts["failed"]
        rate = done / max(time.monotonic() - self.start, 1e-6)
        filled = int(30 * min(done, self.total) / self.total)
        self.stream.write("\r[%s%s] %d/%d  ok %d  failed %d  %.1f img/s " % (
            "#" * filled, "." * (30 - filled), done, self.total, counts["ok"], counts["failed"], rate))
        self.stream.flush()

    def close(self) -> None:
        """End the line."""
        self.stream.write("\n")
        self.stream.flush()


def _retention_days(value) -> int:
    """A whole number of days >= 1 (a retention of 0 would delete every input as soon as it is done)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SourceError("retention_days must be a whole number of days >= 1 (got %r)" % (value,))
    return value


def _work(opts: dict, once: bool) -> int:
    from hospital_imaging.metrics import Metrics  # pylint: disable=import-outside-toplevel
    from hospital_imaging.worker import Worker, checksum  # pylint: disable=import-outside-toplevel

    checksum(str(opts["checksum"]), b"")  # refuse an unknown checksum before opening anything
    retention = _retention_days(opts["retention_days"])
    pipe = pipeline_mod.load(opts["pipeline"]) if opts["pipeline"] else pipeline_mod.default()
    source = _source(opts)
    metrics = Metrics()
    port = opts["metrics_port"] if opts["metrics_port"] is not None else (None if once else 9108)
    if port is not None:
        bound = metrics.serve(int(port), opts["metrics_bind"])
        event("metrics_listening", bind=opts["metrics_bind"], port=bound)
    worker = Worker(source, pipe, processes=opts["processes"] or None, batch=int(opts["batch"]), metrics=metrics,
                    poll=float(opts["poll"]), grace=float(opts["grace"]), pipeline_path=opts["pipeline"],
                    checksum_algorithm=str(opts["checksum"]), retention_days=retention)
    worker.install_signal_handlers()
    show = opts["progress"] if opts["progress"] is not None else (once and sys.stderr.isatty())
    progress = Progress(source.depth()) if show else None
    try:
        counts = worker.run(once=once, progress=progress)
    finally:
        if progress is not None:
            progress.close()
        metrics.stop()
        source.close()
    print(json.dumps(counts, sort_keys=True))
    return 1 if once and counts["failed"] else 0


def _submit(opts: dict, files: list) -> int:
    if opts["id"] and len(files) != 1:
        raise SourceError("--id needs exactly one file")
    if opts["id"] and not is_opaque(opts["id"]):
        raise SourceError("--id must be an opaque id, 32 lowercase hex digits plus an optional image extension "
                          "(e.g. uuid4().hex + '.dcm'), never a name that could identify a patient")
    source = _source(opts)
    try:
        for path in files:
            with open(path, "rb") as handle:
                data = handle.read()
            # The file's name never becomes the job id (it may name the patient): a random opaque id,
            # printed here so that the producer can match its file to the job, outputs and sidecar.
            job = source.submit(opts["id"] or opaque_job_id(path), data, replace=bool(opts["replace"]))
            print(json.dumps({"file": path, "job": job}))
    finally:
        source.close()
    return 0


def main(argv=None) -> int:
    """Entry point."""
    args = _parser().parse_args(argv)
    try:
        opts = _options(args)
        setup(opts["log_level"])
        if args.command == "check-pipeline":
            pipe = pipeline_mod.load(args.path)
            print(json.dumps({"name": pipe.name, "version": pipe.version, "hash": pipe.hash}))
            return 0
        if args.command in ("run", "process"):
            return _work(opts, once=args.command == "process")
        if args.command == "submit":
            return _submit(opts, args.files)
        source = _source(opts)
        try:
            print(json.dumps(source.status(), sort_keys=True))
        finally:
            source.close()
        return 0
    except (ImagingError, SourceError, OSError) as exc:
        message = exc.reason if isinstance(exc, ImagingError) else str(exc)
        sys.stderr.write("hospital-imaging: error: %s\n" % message)
        return 2
