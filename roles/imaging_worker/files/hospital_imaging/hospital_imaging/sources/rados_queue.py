"""Ceph RADOS pool as the work queue (librados, imported lazily: python3-rados on Debian).

Namespaces of the pool::

    inbox   JOB                 waiting inputs; a claim is an exclusive cls_lock on the object
    out     JOB.edges.png JOB.image.png JOB.json   outputs; the sidecar JOB.json is written last
    done    JOB                 acknowledgement marker (JSON), written before the input is removed
    failed  JOB  JOB.reason     rejected input (copied) and its reason

A claim is ``lock_exclusive(JOB, "hospital-imaging", cookie=WORKER, duration=lease)``; the
controlling process renews it every lease/3. If the worker dies, nobody renews and the OSD drops
the lock once ``lease`` seconds have passed; the next ``claim`` of any worker takes the job.
librados creates an object when it locks a missing one: a claim therefore checks the done/failed
markers and removes such a re-created empty object. (The pacific Python binding has no
break_lock/list_lockers; expiry is the only way a dead worker's claim ends, so pick the lease as
the longest acceptable delay after a crash, and keep it well above the renewal hiccups.)
The OSD times the lease by its own wall clock (ceph_clock_now when the lock is set and checked):
a forward clock step on it shortens running leases; renewal every lease/3 absorbs steps below
two thirds of a lease.

Job ids are opaque (``sources.opaque_job_id``): ``submit`` makes one, and an object that a producer
wrote into ``inbox`` under another name (a patient's name, say) is copied to a new opaque name
under its claim, and the original removed, before anything is logged or written about it. (A crash
in the middle of that copy can leave both: at least once, as everywhere.)
"""

from __future__ import annotations

import json
import os
import random
import secrets
import socket
import time

from hospital_imaging.errors import SourceError
from hospital_imaging.sources import Claim, TaskIO, WorkSource, check_job_id, is_opaque, opaque_job_id

LOCK = "hospital-imaging"
FLAG_MAY_RENEW = 1      # LIBRADOS_LOCK_FLAG_(MAY_)RENEW
FLAG_MUST_RENEW = 2     # LIBRADOS_LOCK_FLAG_MUST_RENEW
NAMESPACES = ("inbox", "out", "done", "failed")
MAX_OBJECT = 90 * 1024 * 1024  # osd_max_write_size default: one write_full per input


def _rados():
    try:
        import rados  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise SourceError("the rados source needs the librados Python binding (Debian package "
                          "python3-rados, importable by this Python)") from None
    return rados


def connect(conffile: str, keyring: str | None, client: str, timeout: int = 15):
    """A connected rados.Rados with short timeouts (a wrong address fails fast, not after 300 s)."""
    rados = _rados()
    conf = {"client_mount_timeout": str(timeout), "rados_mon_op_timeout": str(timeout),
            "rados_osd_op_timeout": str(2 * timeout)}
    if keyring:
        conf["keyring"] = keyring
    try:
        cluster = rados.Rados(conffile=conffile, name=client, conf=conf)
        cluster.connect(timeout=timeout)
    except rados.Error as exc:
        raise SourceError("cannot connect to Ceph as %s with %s: %s" % (client, conffile, exc)) from None
    return cluster


def _ioctxs(cluster, pool: str) -> dict:
    rados = _rados()
    out = {}
    for ns in NAMESPACES:
        try:
            ioctx = cluster.open_ioctx(pool)
        except rados.ObjectNotFound:
            raise SourceError("RADOS pool %r does not exist" % pool) from None
        ioctx.set_namespace(ns)
        out[ns] = ioctx
    return out


def _exists(ioctx, name: str) -> bool:
    rados = _rados()
    try:
        ioctx.stat(name)
        return True
    except rados.ObjectNotFound:
        return False


class RadosSource(WorkSource):
    """Controller side of the RADOS queue (see module docstring)."""

    kind = "rados"

    def __init__(self, pool: str, conffile: str = "/etc/ceph/ceph.conf", keyring: str | None = None,
                 client: str = "client.admin", lease: float = 30.0, worker_id: str | None = None):
        if not pool:
            raise SourceError("rados source needs a pool name (rados:POOL)")
        if lease < 2:
            raise SourceError("lease must be at least 2 seconds, got %s" % lease)
        self.pool, self.conffile, self.keyring, self.client = pool, conffile, keyring, client
        self.lease = float(lease)
        self.worker_id = worker_id or "%s-%d-%s" % (socket.gethostname().split(".")[0], os.getpid(),
                                                    secrets.token_hex(3))
        self.rados = _rados()
        self.cluster = connect(conffile, keyring, client)
        self.io = _ioctxs(self.cluster, pool)
        self._held = set()
        self._desc = json.dumps({"worker": self.worker_id, "pid": os.getpid()})

    def spec(self) -> dict:
        return {"kind": "rados", "pool": self.pool, "conffile": self.conffile, "keyring": self.keyring,
                "client": self.client, "worker_id": self.worker_id}

    def close(self) -> None:
        for ioctx in self.io.values():
            ioctx.close()
        self.cluster.shutdown()

    def _lock(self, job: str, flags: int = 0) -> bool:
        try:
            self.io["inbox"].lock_exclusive(job, LOCK, self.worker_id, self._desc, int(round(self.lease)), flags)
            return True
        except (self.rados.ObjectBusy, self.rados.ObjectExists, self.rados.ObjectNotFound):
            return False

    def _finished(self, job: str) -> bool:
        """True when the job already has a done/failed marker: drop a (re-created) inbox object."""
        if _exists(self.io["done"], job) or _exists(self.io["failed"], job + ".reason"):
            try:
                self.io["inbox"].remove_object(job)
            except self.rados.ObjectNotFound:
                pass
            return True
        return False

    def recover(self) -> int:
        return 0  # claims of dead workers end by lease expiry on the OSDs

    def _names(self):
        return (obj.key for obj in self.io["inbox"].list_objects())

    def claim(self, limit: int) -> list:
        candidates = []
        for name in self._names():
            if name not in self._held:
                candidates.append(name)
                if len(candidates) >= 4 * limit:
                    break
        random.shuffle(candidates)  # workers listing the same order would collide on the same heads
        claims = []
        for name in candidates:
            if len(claims) >= limit:
                break
            if not self._lock(name):
                continue
            if self._finished(name):
                continue
            job = name if is_opaque(name) else self._rename(name)
            if job is None:
                continue
            self._held.add(job)
            claims.append(Claim(job=job, locator=job, claimed_at=time.time()))
        return claims

    def _rename(self, name: str) -> str | None:
        """Give the claimed object ``name`` an opaque id: lock the new name (creating it), copy, remove
        the old one. Returns the new id (claimed), or None if the object vanished."""
        inbox = self.io["inbox"]
        try:
            size = inbox.stat(name)[0]
            data = inbox.read(name, size) if size else b""
        except self.rados.ObjectNotFound:
            return None
        job = opaque_job_id(name)
        if not self._lock(job):
            return None
        inbox.write_full(job, data)
        try:
            inbox.remove_object(name)
        except self.rados.ObjectNotFound:
            pass
        return job

    def renew(self, claims) -> list:
        lost = []
        for claim in claims:
            if not self._lock(claim.job, FLAG_MAY_RENEW) or self._finished(claim.job):
                lost.append(claim)
        return lost

    def ack(self, claim: Claim, summary: dict) -> None:
        self._held.discard(claim.job)
        if not self._lock(claim.job, FLAG_MUST_RENEW):
            return  # lease lost: the new holder acknowledges (outputs are identical)
        body = json.dumps(dict(summary, job=claim.job, worker=self.worker_id, time=time.time())).encode()
        self.io["done"].write_full(claim.job, body)
        try:
            self.io["inbox"].remove_object(claim.job)
        except self.rados.ObjectNotFound:
            pass

    def fail(self, claim: Claim, code: str, reason: str) -> None:
        self._held.discard(claim.job)
        if not self._lock(claim.job, FLAG_MUST_RENEW):
            return
        inbox = self.io["inbox"]
        try:
            size = inbox.stat(claim.job)[0]
            data = inbox.read(claim.job, size) if size else b""
        except self.rados.ObjectNotFound:
            return
        self.io["failed"].write_full(claim.job, data)
        body = json.dumps({"job": claim.job, "code": code, "reason": reason, "worker": self.worker_id,
                           "time": time.time()}, sort_keys=True).encode()
        self.io["failed"].write_full(claim.job + ".reason", body)
        try:
            inbox.remove_object(claim.job)
        except self.rados.ObjectNotFound:
            pass

    def release(self, claim: Claim) -> None:
        self._held.discard(claim.job)
        try:
            self.io["inbox"].unlock(claim.job, LOCK, self.worker_id)
        except (self.rados.ObjectNotFound, self.rados.ObjectBusy):
            pass

    def depth(self) -> int:
        return len(list(self._names()))

    def submit(self, job: str, data: bytes, replace: bool = False) -> str:
        """Queue ``data``; ``job`` is its name (only an image extension is kept) or an opaque id.
        Returns the job id."""
        job = check_job_id(opaque_job_id(os.path.basename(job)))
        if len(data) > MAX_OBJECT:
            raise SourceError("input of %d bytes is above the %d bytes a single RADOS write may carry"
                              % (len(data), MAX_OBJECT))
        done, failed = _exists(self.io["done"], job), _exists(self.io["failed"], job + ".reason")
        if _exists(self.io["inbox"], job) or done or failed:
            if not replace:
                raise SourceError("job %s already exists (use replace to resubmit)" % job)
            for ns, name in (("done", job), ("failed", job), ("failed", job + ".reason")):
                try:
                    self.io[ns].remove_object(name)
                except self.rados.ObjectNotFound:
                    pass
        self.io["inbox"].write_full(job, data)
        return job

    def purge(self, older_than: float) -> dict:
        """Remove done markers and failed inputs (with their reasons) older than ``older_than`` seconds
        (object mtime: when they were written). Outputs are not touched. Returns counts only."""
        cutoff = time.time() - older_than
        counts = {"done": 0, "failed": 0}
        for ns in ("done", "failed"):
            ioctx = self.io[ns]
            for obj in list(ioctx.list_objects()):
                try:
                    if time.mktime(ioctx.stat(obj.key)[1]) >= cutoff:
                        continue
                    ioctx.remove_object(obj.key)
                except self.rados.ObjectNotFound:
                    continue
                if not obj.key.endswith(".reason"):
                    counts[ns] += 1
        return counts

    def status(self) -> dict:
        counts = {ns: 0 for ns in ("inbox", "done", "failed", "outputs")}
        for ns in ("inbox", "done"):
            counts[ns] = len(list(self.io[ns].list_objects()))
        counts["failed"] = sum(1 for o in self.io["failed"].list_objects() if o.key.endswith(".reason"))
        counts["outputs"] = sum(1 for o in self.io["out"].list_objects() if o.key.endswith(".json"))
        return counts


class RadosTaskIO(TaskIO):
    """Pool-process side: its own connection, reads the input object, writes output objects."""

    def __init__(self, spec: dict):
        self.rados = _rados()
        self.cluster = connect(spec["conffile"], spec["keyring"], spec["client"])
        self.io = _ioctxs(self.cluster, spec["pool"])

    def fetch(self, locator: str) -> bytes:
        try:
            size = self.io["inbox"].stat(locator)[0]
            return self.io["inbox"].read(locator, size) if size else b""
        except self.rados.ObjectNotFound:
            raise SourceError("input object %s vanished (claim lost)" % locator) from None

    def read_sidecar(self, job: str) -> dict | None:
        try:
            size = self.io["out"].stat(job + ".json")[0]
            return json.loads(self.io["out"].read(job + ".json", size))
        except (self.rados.ObjectNotFound, ValueError):
            return None

    def write_outputs(self, job: str, files: dict, sidecar: bytes) -> None:
        for name, data in files.items():
            self.io["out"].write_full(name, data)
        self.io["out"].write_full(job + ".json", sidecar)
