"""Work sources: where jobs come from and where results go (one interface, two implementations).

A source has two halves:
- ``WorkSource`` lives in the controlling process: it claims jobs, renews and releases claims and
  acknowledges (done) or rejects (failed) them.
- ``TaskIO`` lives in each pool process: it fetches an input by its locator (a path or an object
  name: never pixel data between processes) and writes the outputs and the sidecar, atomically
  and under names derived from the job id only, so a job processed twice still has exactly one
  output set.
Delivery is at least once; outputs are idempotent.
"""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass, field

from hospital_imaging.errors import SourceError

JOB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
SIDECAR_SUFFIX = ".json"
# Job ids are opaque: 32 hex digits (a random UUID) plus the input's image extension, if any. A
# submitted file name (often the patient's name or MRN) never becomes a job id: it would reach
# logs, reason files, output names, sidecars and the acknowledgement markers.
EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".dcm")
OPAQUE_JOB_ID = re.compile(r"^[0-9a-f]{32}(\.(png|jpg|jpeg|tif|tiff|dcm))?$")


def is_opaque(job: str) -> bool:
    """True for an id of the opaque form (what ``opaque_job_id`` makes)."""
    return bool(OPAQUE_JOB_ID.match(job))


def opaque_job_id(name: str = "") -> str:
    """The job id for an input called ``name``: ``name`` itself when it already is an opaque id (a
    resubmission or a recovered claim), else a new random one keeping only a known image extension."""
    if is_opaque(name):
        return name
    ext = os.path.splitext(name)[1].lower()
    return uuid.uuid4().hex + (ext if ext in EXTENSIONS else "")


def check_job_id(job: str) -> str:
    """Job ids name files and objects: letters, digits, '.', '_' and '-' only."""
    if not JOB_ID.match(job) or job.endswith(".reason"):
        raise SourceError("invalid job id %r: use 1-200 of [A-Za-z0-9._-], not starting with '.' "
                          "and not ending in .reason" % job)
    return job


def output_names(job: str, kinds) -> dict:
    """Deterministic output names for a job: {'edges': 'JOB.edges.png', ..., 'sidecar': 'JOB.json'}."""
    names = {kind: "%s.%s.png" % (job, kind) for kind in kinds}
    names["sidecar"] = job + SIDECAR_SUFFIX
    return names


@dataclass
class Claim:
    """A job this worker holds: ``locator`` is what TaskIO.fetch needs (path or object name)."""

    job: str
    locator: str
    claimed_at: float
    extra: dict = field(default_factory=dict)


class WorkSource:
    """Controller side of a source (see module docstring). Subclasses implement every method."""

    kind = "abstract"

    def spec(self) -> dict:
        """Picklable description from which a pool process builds its TaskIO."""
        raise NotImplementedError

    def recover(self) -> int:
        """Return claims of dead workers to the queue; returns how many."""
        raise NotImplementedError

    def claim(self, limit: int) -> list:
        """Claim up to ``limit`` jobs."""
        raise NotImplementedError

    def renew(self, claims) -> list:
        """Extend the lease of ``claims``; return the claims that were lost."""
        raise NotImplementedError

    def ack(self, claim: Claim, summary: dict) -> None:
        """The outputs of ``claim`` are written: mark the job done."""
        raise NotImplementedError

    def fail(self, claim: Claim, code: str, reason: str) -> None:
        """The job cannot be processed: move it to failed with the reason."""
        raise NotImplementedError

    def release(self, claim: Claim) -> None:
        """Give the job back unprocessed (graceful stop)."""
        raise NotImplementedError

    def depth(self) -> int:
        """Jobs waiting (not claimed)."""
        raise NotImplementedError

    def submit(self, job: str, data: bytes, replace: bool = False) -> str:
        """Queue ``data`` as job ``job``."""
        raise NotImplementedError

    def purge(self, older_than: float) -> dict:
        """Retention: remove finished inputs and markers older than ``older_than`` seconds (never
        outputs); returns counts per state, no names."""
        raise NotImplementedError

    def status(self) -> dict:
        """Counts per state."""
        raise NotImplementedError

    def close(self) -> None:
        """Release resources (not claims)."""


class TaskIO:
    """Pool-process side of a source."""

    def fetch(self, locator: str) -> bytes:
        """The input bytes."""
        raise NotImplementedError

    def read_sidecar(self, job: str) -> dict | None:
        """The committed sidecar of ``job`` or None."""
        raise NotImplementedError

    def write_outputs(self, job: str, files: dict, sidecar: bytes) -> None:
        """Write ``files`` (name -> bytes) then the sidecar last (it commits the output set)."""
        raise NotImplementedError


def open_source(url: str, **options) -> WorkSource:
    """``spool:/path/to/dir`` (or a plain path) or ``rados:POOL``; options go to the implementation."""
    if url.startswith("rados:"):
        from hospital_imaging.sources.rados_queue import RadosSource  # pylint: disable=import-outside-toplevel
        options.pop("fsync", None)  # RADOS acknowledges a write once the OSDs have it on disk
        return RadosSource(pool=url[len("rados:"):], **options)
    from hospital_imaging.sources.spool import SpoolSource  # pylint: disable=import-outside-toplevel
    path = url[len("spool:"):] if url.startswith("spool:") else url
    return SpoolSource(path, **{k: v for k, v in options.items() if k in ("worker_id", "create", "fsync")})


def task_io(spec: dict) -> TaskIO:
    """Build the TaskIO of a pool process from ``WorkSource.spec()``."""
    if spec["kind"] == "rados":
        from hospital_imaging.sources.rados_queue import RadosTaskIO  # pylint: disable=import-outside-toplevel
        return RadosTaskIO(spec)
    from hospital_imaging.sources.spool import SpoolTaskIO  # pylint: disable=import-outside-toplevel
    return SpoolTaskIO(spec)
