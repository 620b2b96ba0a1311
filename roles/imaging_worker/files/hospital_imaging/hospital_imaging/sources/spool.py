"""Local spool directory source.

Layout under the spool root::

    inbox/    NAME                     waiting inputs (submit writes tmp/ then renames here)
    claimed/  WORKER~JOB               claimed by atomic rename from inbox/ (NAME -> opaque JOB id)
    done/     JOB                      processed inputs (ack renames claimed -> done)
    failed/   JOB  JOB.reason          rejected inputs and a JSON reason file
    outbox/   JOB.edges.png JOB.image.png JOB.json   outputs; the sidecar JOB.json is written last
    tmp/      WORKER~RANDOM            partial writes, renamed into place when complete
    workers/  WORKER.lock              flock held by each live worker: its liveness

A worker that dies (even by SIGKILL) loses its flock at once; ``recover`` renames the claims of
such workers back to inbox/ and removes their partial files. Outputs are written to tmp/ and
renamed, so a reader never sees a partial file, and their names depend on the job id only.

inbox/ and tmp/ are writable by the submitters: they are created sticky (1730, only a file's
owner may rename or delete it; submitters cannot list each other's files), and an input is opened
with O_NOFOLLOW and must be a regular file, so a symbolic link, fifo or device in inbox/ fails
its job without the worker reading (or hanging on) anything it points at.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import secrets
import socket
import stat
import time

from hospital_imaging.errors import InputError, SourceError
from hospital_imaging.sources import Claim, TaskIO, WorkSource, check_job_id, opaque_job_id

DIRS = ("inbox", "claimed", "done", "failed", "outbox", "tmp", "workers")
SEP = "~"
# Directories the submitters write into: sticky, and not listable by the group.
SHARED_MODE = {"inbox": 0o1730, "tmp": 0o1730}


def _atomic_write(tmp_dir: str, owner: str, dest: str, data: bytes, sync: bool = False) -> None:
    """Write ``data`` to ``dest`` through a file in ``tmp_dir`` and a rename (``sync``: its data is on
    disk before the rename; the rename itself is made durable by syncing ``dest``'s directory)."""
    tmp = os.path.join(tmp_dir, "%s%s%s" % (owner, SEP, secrets.token_hex(6)))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, dest)


def _sync_dir(path: str) -> None:
    """Make the renames into directory ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _owner_alive(workers_dir: str, owner: str, me: str) -> bool:
    if owner == me:
        return True
    path = os.path.join(workers_dir, owner + ".lock")
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return True
    try:  # we got the lock: the owner is gone
        os.unlink(path)
    except FileNotFoundError:
        pass
    os.close(fd)
    return False


def _older(directory: str, name: str, seconds: float) -> bool:
    try:
        return os.stat(os.path.join(directory, name)).st_mtime < time.time() - seconds
    except FileNotFoundError:
        return False


class SpoolSource(WorkSource):
    """Spool directory on a local file system (claims by atomic rename, liveness by flock)."""

    kind = "spool"

    def __init__(self, root: str, worker_id: str | None = None, create: bool = True, fsync: bool = False):
        self.root = os.path.abspath(root)
        # fsync: outputs and sidecars (pool processes) and submitted inputs are on disk, with their
        # directory entries, before a job is acknowledged or a submission returns: a power loss or
        # kernel crash then loses no acknowledged job. Without it only process crashes are covered.
        self.fsync = bool(fsync)
        self.dirs = {d: os.path.join(self.root, d) for d in DIRS}
        if create:
            for name, path in self.dirs.items():
                if not os.path.isdir(path):
                    os.makedirs(path, exist_ok=True)
                    if name in SHARED_MODE:
                        os.chmod(path, SHARED_MODE[name])  # explicit: mkdir's mode is masked by the umask
        missing = [d for d, p in self.dirs.items() if not os.path.isdir(p)]
        if missing:
            raise SourceError("spool %s lacks %s" % (self.root, ", ".join(missing)))
        self.worker_id = worker_id or "%s-%d-%s" % (socket.gethostname().split(".")[0], os.getpid(),
                                                    secrets.token_hex(3))
        if SEP in self.worker_id or "/" in self.worker_id:
            raise SourceError("worker id must not contain %r or '/'" % SEP)
        self._lock_fd = None
        self._listed = []  # inbox/ names of the last listing not tried yet (last = next)

    # -- liveness -------------------------------------------------------------------------
    def _register(self) -> None:
        if self._lock_fd is not None:
            return
        tmp = os.path.join(self.dirs["tmp"], "%s%slock" % (self.worker_id, SEP))
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT, 0o640)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.replace(tmp, os.path.join(self.dirs["workers"], self.worker_id + ".lock"))
        self._lock_fd = fd

    def close(self) -> None:
        if self._lock_fd is not None:
            try:
                os.unlink(os.path.join(self.dirs["workers"], self.worker_id + ".lock"))
            except FileNotFoundError:
                pass
            os.close(self._lock_fd)
            self._lock_fd = None

    def spec(self) -> dict:
        return {"kind": "spool", "root": self.root, "worker_id": self.worker_id, "fsync": self.fsync}

    # -- queue ----------------------------------------------------------------------------
    def recover(self) -> int:
        self._register()
        alive = {}
        recovered = 0
        for name in os.listdir(self.dirs["claimed"]):
            owner, job = name.partition(SEP)[::2]
            if not job:
                continue
            if owner not in alive:
                alive[owner] = _owner_alive(self.dirs["workers"], owner, self.worker_id)
            if alive[owner] or owner == self.worker_id:
                continue
            try:
                os.rename(os.path.join(self.dirs["claimed"], name), os.path.join(self.dirs["inbox"], job))
                recovered += 1
            except FileNotFoundError:
                pass
        for name in os.listdir(self.dirs["tmp"]):
            owner = name.partition(SEP)[0]
            if owner == self.worker_id or (owner.startswith("submit-") and not _older(self.dirs["tmp"], name, 3600)):
                continue
            if owner not in alive:
                alive[owner] = _owner_alive(self.dirs["workers"], owner, self.worker_id)
            if not alive[owner]:
                try:
                    os.unlink(os.path.join(self.dirs["tmp"], name))
                except FileNotFoundError:
                    pass
        return recovered

    def _waiting(self) -> list:
        with os.scandir(self.dirs["inbox"]) as entries:
            return sorted(e.name for e in entries if not e.name.startswith("."))

    def claim(self, limit: int) -> list:
        """Claim up to ``limit`` jobs in name order.

        inbox/ is listed (and sorted) again only when the names of the previous listing are used
        up, not on every call: a service claims a few jobs per finished batch, and listing a spool
        with thousands of waiting files each time cost O(waiting) per batch. A name that another
        worker took meanwhile fails its rename and is skipped; jobs that arrive (or are recovered)
        meanwhile are found by the next listing."""
        self._register()
        claims = []
        listed_now = False
        while len(claims) < limit:
            if not self._listed:
                if listed_now:
                    break
                self._listed = self._waiting()[::-1]
                listed_now = True
                if not self._listed:
                    break
            name = self._listed.pop()
            # The submitted name is dropped here: it may be a patient's name or MRN. From the claim on
            # the job has an opaque id (kept when the name already is one: a resubmission, a recovery).
            job = opaque_job_id(name)
            dest = os.path.join(self.dirs["claimed"], self.worker_id + SEP + job)
            try:
                os.rename(os.path.join(self.dirs["inbox"], name), dest)
            except FileNotFoundError:
                continue  # another worker was faster
            claims.append(Claim(job=job, locator=dest, claimed_at=time.time()))
        return claims

    def renew(self, claims) -> list:
        return [c for c in claims if not os.path.exists(c.locator)]

    @staticmethod
    def _settle(src: str, dest: str) -> None:
        """Rename ``src`` to ``dest`` and start its retention age now (a rename keeps the mtime, and a
        producer's `mv` keeps the original file's, however old)."""
        os.replace(src, dest)
        try:
            os.utime(dest, follow_symlinks=False)
        except OSError:
            pass

    def ack(self, claim: Claim, summary: dict) -> None:
        try:
            self._settle(claim.locator, os.path.join(self.dirs["done"], claim.job))
        except FileNotFoundError:
            pass  # already acknowledged (duplicate delivery)

    def fail(self, claim: Claim, code: str, reason: str) -> None:
        body = json.dumps({"job": claim.job, "code": code, "reason": reason, "worker": self.worker_id,
                           "time": time.time()}, indent=1, sort_keys=True).encode()
        _atomic_write(self.dirs["tmp"], self.worker_id, os.path.join(self.dirs["failed"], claim.job + ".reason"), body)
        try:
            self._settle(claim.locator, os.path.join(self.dirs["failed"], claim.job))
        except FileNotFoundError:
            pass

    def release(self, claim: Claim) -> None:
        try:
            os.rename(claim.locator, os.path.join(self.dirs["inbox"], claim.job))
        except FileNotFoundError:
            pass

    def depth(self) -> int:
        return len(self._waiting())

    def submit(self, job: str, data: bytes, replace: bool = False) -> str:
        """Queue ``data``; ``job`` is its name (only an image extension is kept) or an opaque id.
        Returns the job id."""
        job = check_job_id(opaque_job_id(os.path.basename(job)))
        if not replace:
            for state in ("inbox", "done", "failed"):
                if os.path.exists(os.path.join(self.dirs[state], job)):
                    raise SourceError("job %s already exists in %s/ (use replace to resubmit)" % (job, state))
        _atomic_write(self.dirs["tmp"], "submit-%d" % os.getpid(), os.path.join(self.dirs["inbox"], job), data,
                      sync=self.fsync)
        if self.fsync:
            _sync_dir(self.dirs["inbox"])
        return job

    def purge(self, older_than: float) -> dict:
        """Remove inputs in done/ and failed/ (with their reasons) older than ``older_than`` seconds
        (mtime: set when they were acknowledged or failed). outbox/ is not touched. Returns counts only."""
        cutoff = time.time() - older_than
        counts = {"done": 0, "failed": 0, "errors": 0}
        for state in ("done", "failed"):
            with os.scandir(self.dirs[state]) as entries:
                for entry in entries:
                    try:
                        if entry.stat(follow_symlinks=False).st_mtime >= cutoff:
                            continue
                        os.unlink(entry.path)
                    except FileNotFoundError:
                        continue
                    except OSError:  # e.g. a directory a submitter put in inbox/: counted, the rest goes on
                        counts["errors"] += 1
                        continue
                    if not entry.name.endswith(".reason"):
                        counts[state] += 1
        return counts

    def status(self) -> dict:
        counts = {}
        for state in ("inbox", "claimed", "done"):
            counts[state] = sum(1 for n in os.listdir(self.dirs[state]) if not n.startswith("."))
        counts["failed"] = sum(1 for n in os.listdir(self.dirs["failed"]) if not n.endswith(".reason"))
        counts["outputs"] = sum(1 for n in os.listdir(self.dirs["outbox"]) if n.endswith(".json"))
        counts["workers"] = len(os.listdir(self.dirs["workers"]))
        return counts


class SpoolTaskIO(TaskIO):
    """Pool-process side of the spool: read the claimed file, write into outbox/ via tmp/."""

    def __init__(self, spec: dict):
        self.root = spec["root"]
        self.owner = spec["worker_id"]
        self.tmp = os.path.join(self.root, "tmp")
        self.outbox = os.path.join(self.root, "outbox")
        self.fsync = bool(spec.get("fsync", False))

    def fetch(self, locator: str) -> bytes:
        # O_NOFOLLOW: a symbolic link in inbox/ is not followed (its target may be anything the worker
        # can read); O_NONBLOCK: opening a fifo does not wait for a writer. Then: regular files only.
        try:
            fd = os.open(locator, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                raise SourceError("claimed input %s vanished (claim lost)" % os.path.basename(locator)) from None
            if exc.errno == errno.ELOOP:
                raise InputError("input is a symbolic link: refused, not followed", "unsupported") from None
            raise
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise InputError("input is not a regular file (fifo, socket or device): refused", "unsupported")
            with os.fdopen(fd, "rb", closefd=False) as handle:
                return handle.read()
        finally:
            os.close(fd)

    def read_sidecar(self, job: str) -> dict | None:
        try:
            with open(os.path.join(self.outbox, job + ".json"), "rb") as handle:
                return json.loads(handle.read())
        except (OSError, ValueError):
            return None

    def write_outputs(self, job: str, files: dict, sidecar: bytes) -> None:
        for name, data in files.items():
            _atomic_write(self.tmp, self.owner, os.path.join(self.outbox, name), data, sync=self.fsync)
        _atomic_write(self.tmp, self.owner, os.path.join(self.outbox, job + ".json"), sidecar, sync=self.fsync)
        if self.fsync:  # the renames too, before the job can be acknowledged
            _sync_dir(self.outbox)
