# Copyright: hospital.cloud maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""hc-backup: RBD images -> restic repository, incremental, encrypted; restore and restore drill.

Installed on the backup host by hospital.cloud.backup and run by its systemd timers (and by the backup, restore
and restore-drill playbooks). Ceph and restic do the work; this program only sequences them:

- backup: `rbd snap create IMG@hcbk-<UTC time>`, then either a full `rbd export` of that snapshot or, while the
  last full is younger than `full_every_hours` and its snapshot is still on the cluster, `rbd export-diff
  --from-snap <full's snapshot>` (a differential: every restore point is the full plus at most one diff) piped
  into `restic backup --stdin`. restic encrypts (AES-256, client side) and deduplicates, so a new full costs
  the repository only the chunks it lacks. A restic snapshot is written only when its stream ended cleanly: a
  backup killed mid-way leaves no restore point, and the next run starts again. On the cluster each image keeps
  the snapshot of its current full and of its latest backup (docs/backup.md, "Retention").
- restore: the full (+ the diff) of a restore point into a NEW image (default), or over the image itself only
  with `--overwrite` and only while no client has it open (the VM stopped); the old image is kept, renamed.
- verify: the restore drill. Each image's latest restore point restored to a scratch image, its sha256 compared
  with the cluster snapshot it came from, the scratch image removed; `restic check` for the repository.
- prune: the retention policy (hourly/daily/weekly/monthly, restic's own `forget --keep-*`), never dropping a
  full a kept diff needs, then `restic prune`. Only when the configuration allows it (prune: true).

Every command prints one JSON document; a failure exits non-zero with {"failed": true, "msg": ...}. The status of
the last runs goes to `state_dir` and to a node_exporter textfile (alerts: docs/monitoring.md). Standard library
only: it runs on the Debian python3 of the backup host.
"""

import argparse
import datetime
import fcntl
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.parse

SNAP_PREFIX = "hcbk-"
TAG = "hospital-cloud"
CHUNK = 4 * 1024 * 1024
# a snapshot under a guest freeze, or of a VM that was not running, needs no journal replay to be consistent
SAFE_CONSISTENCY = ("filesystem", "stopped")
EXIT_BAD_INPUT, EXIT_FAILED = 2, 1


class BackupError(Exception):
    """A failed step; the message is for the operator (no key, no password in it)."""


class BadInput(BackupError):
    """The request names something the configuration does not have, or asks for something refused."""


def snap_name(now):
    return SNAP_PREFIX + now.strftime("%Y%m%dT%H%M%SZ")


def snap_time(name):
    return datetime.datetime.strptime(name[len(SNAP_PREFIX):], "%Y%m%dT%H%M%SZ").replace(
        tzinfo=datetime.timezone.utc)


def stream_name(image):
    """The file name of an image's stream in the repository: one name, no directory (restic 0.18 looks up the
    directories of a --stdin-filename on the backup host)."""
    return urllib.parse.quote(image, safe="")


def tags_of(point):
    """{'image': 'pool/img', 'kind': 'full', ...} from a restic snapshot's tags (key=value)."""
    return dict(t.split("=", 1) for t in point.get("tags") or [] if "=" in t)


def restore_points(snapshots, image):
    """The restore points of one image, oldest first: restic snapshots tagged by this program for it."""
    points = []
    for s in snapshots:
        tags = tags_of(s)
        if TAG in (s.get("tags") or []) and tags.get("image") == image and tags.get("kind") in ("full", "diff"):
            points.append({"id": s["id"], "short_id": s.get("short_id", s["id"][:8]), "time": s["time"],
                           "kind": tags["kind"], "snap": tags.get("snap"), "base": tags.get("base")})
    return sorted(points, key=lambda p: p["snap"] or "")


def choose_kind(points, cluster_snaps, now, full_every_hours):
    """'full', or ('diff', base snapshot): a diff while the newest full is young enough and its snapshot (the
    diff's starting point) is still on the cluster."""
    fulls = [p for p in points if p["kind"] == "full"]
    if not fulls:
        return "full", None
    last = fulls[-1]
    if last["snap"] not in cluster_snaps:
        return "full", None
    if now - snap_time(last["snap"]) >= datetime.timedelta(hours=full_every_hours):
        return "full", None
    return "diff", last["snap"]


def chain_of(points, point):
    """The restore point and what it needs, in the order they are applied: [full] or [full, diff]."""
    if point["kind"] == "full":
        return [point]
    base = [p for p in points if p["kind"] == "full" and p["snap"] == point["base"]]
    if not base:
        raise BackupError("restore point %s needs the full backup of %s, which the repository no longer holds"
                          % (point["short_id"], point["base"]))
    return [base[-1], point]


def cluster_snaps_to_remove(cluster_snaps, points):
    """This program's snapshots on the cluster that no backup needs any more: every one except the newest full's
    (the next diffs start from it) and the newest restore point's (the drill compares against it). A snapshot
    without a restore point (a backup killed mid-way) goes too."""
    keep = set()
    fulls = [p for p in points if p["kind"] == "full"]
    if fulls:
        keep.add(fulls[-1]["snap"])
    if points:
        keep.add(points[-1]["snap"])
    return [s for s in cluster_snaps if s.startswith(SNAP_PREFIX) and s not in keep]


def fulls_needed(points, keep_ids):
    """Ids of the fulls that the kept diffs need (so that the retention never strands a diff)."""
    kept = [p for p in points if p["id"] in keep_ids]
    needed = set()
    for p in kept:
        if p["kind"] == "diff":
            needed.update(b["id"] for b in points if b["kind"] == "full" and b["snap"] == p["base"])
    return needed


def retention_args(retention):
    args = []
    for unit in ("hourly", "daily", "weekly", "monthly"):
        n = int(retention.get(unit, 0) or 0)
        if n < 0:
            raise BadInput("retention %s must be 0 or more, got %d" % (unit, n))
        if n:
            args += ["--keep-%s" % unit, str(n)]
    if not args:
        raise BadInput("the retention policy keeps nothing (every count is 0): refused")
    return args


class Engine:
    def __init__(self, config):
        self.config = config
        ceph = config["ceph"]
        self.ceph_args = ["--conf", ceph["conf"], "--keyring", ceph["keyring"], "--id", ceph["id"]]
        self.images = {i["image"]: i for i in config["images"]}
        self.state_dir = config.get("state_dir", "/var/lib/hospital-cloud/backup")
        self.restic_env = dict(os.environ, RESTIC_REPOSITORY=config["repository"],
                               RESTIC_PASSWORD_FILE=config["password_file"],
                               RESTIC_CACHE_DIR=config.get("cache_dir", os.path.join(self.state_dir, "cache")))
        self.timeout = int(config.get("command_timeout", 3600))

    # -- the two tools ------------------------------------------------------------------------------------------
    def rbd(self, *args):
        res = subprocess.run(["rbd", *self.ceph_args, *args], capture_output=True, text=True, timeout=self.timeout,
                             check=False)
        if res.returncode != 0:
            raise BackupError("rbd %s: %s" % (" ".join(args), res.stderr.strip()[-500:]))
        return res.stdout

    def restic(self, *args):
        res = subprocess.run(["restic", *args], capture_output=True, text=True, timeout=self.timeout, check=False,
                             env=self.restic_env)
        if res.returncode != 0:
            raise BackupError("restic %s: %s" % (args[0], res.stderr.strip()[-500:]))
        return res.stdout

    def snapshots(self):
        return json.loads(self.restic("snapshots", "--json", "--tag", TAG) or "[]")

    def cluster_snaps(self, image):
        return [s["name"] for s in json.loads(self.rbd("snap", "ls", "--format", "json", image))]

    def image_spec(self, image):
        if image not in self.images:
            raise BadInput("unknown image %r: the backup configuration has %s" % (image, sorted(self.images)))
        return self.images[image]

    def images_of(self, vm=None, image=None):
        if vm:
            found = [i for i, spec in self.images.items() if spec.get("vm") == vm]
            if not found:
                vms = sorted({spec["vm"] for spec in self.images.values() if spec.get("vm")})
                raise BadInput("unknown VM %r: the backup configuration has %s" % (vm, vms))
            return found
        if image:
            self.image_spec(image)
            return [image]
        return sorted(self.images)

    # -- backup --------------------------------------------------------------------------------------------------
    def _stream(self, export_args, restic_args):
        """`rbd <export_args> -` into `restic backup --stdin`; restic's stdin is closed (so it writes its snapshot)
        only after rbd exited 0: a failed or cut export never becomes a restore point."""
        exp = subprocess.Popen(["rbd", *self.ceph_args, *export_args, "-"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
        res = subprocess.Popen(["restic", "backup", "--json", "--quiet", "--stdin", *restic_args],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=self.restic_env)
        digest, length = hashlib.sha256(), 0
        try:
            while True:
                chunk = exp.stdout.read(CHUNK)
                if not chunk:
                    break
                digest.update(chunk)
                length += len(chunk)
                try:
                    res.stdin.write(chunk)
                except BrokenPipeError:
                    # restic stopped reading: its own message says why
                    said = (res.stdout.read() + res.stderr.read()).decode().strip()[-500:]
                    res.wait()
                    raise BackupError("restic backup stopped: %s" % said) from None
            if exp.wait() != 0:
                raise BackupError("rbd %s: %s" % (" ".join(export_args), exp.stderr.read().decode()[-500:]))
            res.stdin.close()
            out, err = res.stdout.read(), res.stderr.read()
            if res.wait(timeout=self.timeout) != 0:
                raise BackupError("restic backup: %s" % err.decode().strip()[-500:])
        except BaseException:
            for p in (exp, res):
                if p.poll() is None:
                    p.kill()
                    p.wait()
            raise
        summary = [json.loads(line) for line in out.decode().splitlines() if '"summary"' in line]
        if not summary:
            raise BackupError("restic backup printed no summary")
        return summary[-1], length, digest.hexdigest()

    # -- guest filesystem freeze ---------------------------------------------------------------------------------
    def _fsfreeze(self, host, action, vm):
        """hc-fsfreeze on a KVM host (over SSH with the configured command); its JSON answer."""
        conf = self.config["freeze"]
        argv = [a.replace("{host}", host) for a in conf["command"]] + [action, vm]
        timeout = int(conf.get("timeout", 60))
        try:
            res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            return {"result": "failed", "msg": "%s: no answer in %d s" % (host, timeout)}
        try:
            return json.loads(res.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            said = (res.stderr or res.stdout).strip()[-300:] or "exit %d" % res.returncode
            return {"result": "failed", "msg": "%s: %s" % (host, said)}

    def freeze(self, vm):
        """(host, answer): the VM's filesystems frozen on the KVM host it runs on, if its agent answers."""
        conf = self.config.get("freeze")
        if not conf or not vm:
            return None, {"result": "off"}
        unreachable = []
        for host in conf.get("hosts", []):
            out = self._fsfreeze(host, "freeze", vm)
            if out.get("result") in ("frozen", "no-agent"):
                return host, out
            if out.get("result") == "failed":
                unreachable.append(out.get("msg", host))
        if unreachable:
            return None, {"result": "failed", "msg": "; ".join(unreachable)}
        return None, {"result": "not-running", "msg": "%s runs on none of %s" % (vm, conf.get("hosts", []))}

    def snapshot_vm(self, vm, images, snap):
        """The snapshots of all of a VM's images at one instant, under one freeze of its filesystems where its
        guest agent answers (filesystem-consistent, across its disks too); else crash-consistent (like a power
        loss). The thaw follows at once (hc-fsfreeze's watchdog thaws anyway if it never comes)."""
        host, answer = self.freeze(vm)
        errors, t0 = {}, time.monotonic()
        try:
            for image in images:
                try:
                    self.rbd("snap", "create", "%s@%s" % (image, snap))
                    errors[image] = None
                except BackupError as e:
                    errors[image] = str(e)
        finally:
            thawed = self._fsfreeze(host, "thaw", vm) if answer.get("result") == "frozen" else None
        info = {"result": answer.get("result"), "msg": answer.get("msg", "")}
        if host:
            info["host"] = host
        if thawed is not None:
            info.update(frozen_seconds=round(time.monotonic() - t0, 2), thaw=thawed.get("result"))
        consistency = {"frozen": "filesystem", "not-running": "stopped"}.get(answer.get("result"), "crash")
        return errors, {"consistency": consistency, "freeze": info}

    def consistency_required(self, image, consistency):
        """The image's required consistency and, when this backup falls short of it, why (the backup is kept:
        crash-consistent beats none; the metric and BackupNotFilesystemConsistent say it)."""
        if self.images[image].get("consistency") != "filesystem":
            return {}
        out = {"consistency_required": "filesystem"}
        if consistency["consistency"] not in SAFE_CONSISTENCY:
            freeze = consistency["freeze"]
            out["warning"] = "only crash-consistent: the guest's filesystems were not frozen (%s%s)" % (
                freeze.get("result"), ": " + freeze["msg"] if freeze.get("msg") else "")
        return out

    def backup_image(self, image, now, snapshots, snap):
        """Back up `image@snap` (taken by snapshot_vm): a full or the differential from the last full."""
        spec = self.image_spec(image)
        points = restore_points(snapshots, image)
        kind, base = choose_kind(points, self.cluster_snaps(image), now, int(self.config.get("full_every_hours", 168)))
        t0 = time.monotonic()
        export = ["export", "%s@%s" % (image, snap)] if kind == "full" else \
            ["export-diff", "--from-snap", base, "%s@%s" % (image, snap)]
        tags = [TAG, "image=" + image, "kind=" + kind, "snap=" + snap] + (["base=" + base] if base else []) + \
            (["vm=" + spec["vm"]] if spec.get("vm") else [])
        summary, length, digest = self._stream(export, ["--stdin-filename", stream_name(image), "--host",
                                                        self.config.get("hostname", "hospital-cloud"),
                                                        *[a for t in tags for a in ("--tag", t)]])
        # the snapshot is the restore point now: older snapshots of this program go from the cluster
        points.append({"id": summary.get("snapshot_id"), "kind": kind, "snap": snap, "base": base})
        for old in cluster_snaps_to_remove(self.cluster_snaps(image), points):
            self.rbd("snap", "rm", "%s@%s" % (image, old))
        return {"image": image, "vm": spec.get("vm"), "kind": kind, "base": base, "snap": snap,
                "restic_snapshot": summary.get("snapshot_id"), "read_bytes": length,
                "added_bytes": summary.get("data_added", 0), "stream_sha256": digest,
                "seconds": round(time.monotonic() - t0, 1)}

    def backup(self, vm=None, image=None):
        now = datetime.datetime.now(datetime.timezone.utc)
        snap = snap_name(now)
        results, snapshots, groups = [], None, {}
        for name in self.images_of(vm, image):
            groups.setdefault(self.images[name].get("vm") or "", []).append(name)
        for group_vm, names in groups.items():
            try:
                # the repository's restore points, listed once a run (again for each VM while it fails): an
                # unreachable repository fails the VM before anything is made on the cluster
                snapshots = self.snapshots() if snapshots is None else snapshots
            except BackupError as e:
                results.extend({"image": name, "ok": False, "msg": str(e)} for name in names)
                continue
            taken, consistency = self.snapshot_vm(group_vm, names, snap)
            for name in names:
                required = dict(consistency, **self.consistency_required(name, consistency))
                try:
                    if taken[name]:
                        raise BackupError(taken[name])
                    results.append(dict(self.backup_image(name, now, snapshots, snap), ok=True, **required))
                except BackupError as e:
                    results.append(dict({"image": name, "ok": False, "msg": str(e)}, **required))
        return {"command": "backup", "time": now.isoformat(), "images": results,
                "failed": not all(r["ok"] for r in results)}

    # -- restore -------------------------------------------------------------------------------------------------
    def find_point(self, image, point, snapshots=None):
        points = restore_points(self.snapshots() if snapshots is None else snapshots, image)
        if not points:
            raise BadInput("no restore point of %s in the repository" % image)
        if point in (None, "", "latest"):
            return points, points[-1]
        for p in points:
            if point in (p["id"], p["short_id"], p["snap"]):
                return points, p
        there = ", ".join(p["snap"] for p in points)
        raise BadInput("no restore point %r of %s (there are: %s)" % (point, image, there))

    def watchers(self, image):
        out = json.loads(self.rbd("status", "--format", "json", image))
        return out.get("watchers", [])

    def exists(self, image):
        pool, name = image.split("/", 1)
        return name in json.loads(self.rbd("ls", "--format", "json", pool) or "[]")

    def _restore_into(self, image, chain, target):
        """The chain (full [, diff]) of `image` into the new image `target`, which ends with no snapshots."""
        for i, p in enumerate(chain):
            dump = subprocess.Popen(["restic", "dump", p["id"], "/" + stream_name(image)], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, env=self.restic_env)
            if i == 0:
                cmd = ["rbd", *self.ceph_args, "import", "--export-format", "1", "-", target]
            else:
                cmd = ["rbd", *self.ceph_args, "import-diff", "-", target]
            imp = subprocess.run(cmd, stdin=dump.stdout, capture_output=True, text=True, timeout=self.timeout,
                                 check=False)
            dump.stdout.close()
            if dump.wait() != 0 or imp.returncode != 0:
                said = "%s %s" % (dump.stderr.read().decode()[-300:], imp.stderr[-300:])
                raise BackupError("restore of %s into %s: %s" % (p["short_id"], target, said))
            if i == 0 and len(chain) > 1:
                # import-diff starts from the snapshot the diff was taken against
                self.rbd("snap", "create", "%s@%s" % (target, p["snap"]))
        if len(chain) > 1:
            self.rbd("snap", "purge", target)

    def restore(self, image, point=None, target=None, overwrite=False, check=False):
        self.image_spec(image)
        # a running VM is the first thing to say, whatever else is wrong
        if overwrite and target not in (None, "", image):
            raise BadInput("overwrite restores over the image itself: leave the target out")
        if overwrite:
            watchers = self.watchers(image)
            if watchers:
                raise BadInput("refused: %s is open by %d client(s) (%s): stop the VM first, nothing was changed"
                               % (image, len(watchers), ", ".join(w.get("address", "?") for w in watchers)))
        points, chosen = self.find_point(image, point)
        chain = chain_of(points, chosen)
        if not overwrite and (target in (None, "", image)):
            target = "%s-restore-%s" % (image, chosen["snap"][len(SNAP_PREFIX):].lower())
        if not overwrite and self.exists(target):
            raise BadInput("refused: the target image %s exists; name another (nothing was changed)" % target)
        plan = {"command": "restore", "image": image, "point": chosen["snap"], "restic_snapshot": chosen["short_id"],
                "chain": [p["snap"] for p in chain], "target": image if overwrite else target,
                "overwrite": overwrite, "changed": True, "check_mode": check}
        if check:
            return plan
        t0 = time.monotonic()
        if overwrite:
            scratch = "%s-restoring" % image
            if self.exists(scratch):
                self.rbd("rm", scratch)
            self._restore_into(image, chain, scratch)
            kept = "%s-replaced-%s" % (image, datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dt%H%M%Sz"))
            self.rbd("rename", image, kept)
            self.rbd("rename", scratch, image)
            plan["replaced_image_kept_as"] = kept
        else:
            self._restore_into(image, chain, target)
        plan["seconds"] = round(time.monotonic() - t0, 1)
        return plan

    # -- verify: the restore drill -------------------------------------------------------------------------------
    def sha256_of(self, spec):
        exp = subprocess.Popen(["rbd", *self.ceph_args, "export", spec, "-"], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL)
        digest = hashlib.sha256()
        while chunk := exp.stdout.read(CHUNK):
            digest.update(chunk)
        if exp.wait() != 0:
            raise BackupError("rbd export %s failed" % spec)
        return digest.hexdigest()

    def verify_image(self, image, snapshots):
        points, latest = self.find_point(image, "latest", snapshots)
        scratch = "%s-drill" % image
        if self.exists(scratch):
            self.rbd("rm", scratch)
        t0 = time.monotonic()
        self._restore_into(image, chain_of(points, latest), scratch)
        try:
            restored = self.sha256_of(scratch)
            source = self.sha256_of("%s@%s" % (image, latest["snap"]))
        finally:
            self.rbd("rm", scratch)
        return {"image": image, "point": latest["snap"], "restic_snapshot": latest["short_id"],
                "restored_sha256": restored, "snapshot_sha256": source, "ok": restored == source,
                "seconds": round(time.monotonic() - t0, 1)}

    def verify(self, vm=None, image=None):
        results, snapshots = [], None
        for name in self.images_of(vm, image):
            try:
                snapshots = self.snapshots() if snapshots is None else snapshots
                results.append(self.verify_image(name, snapshots))
            except BackupError as e:
                results.append({"image": name, "ok": False, "msg": str(e)})
        try:
            self.restic("unlock")  # only stale locks (a run killed mid-way) go
            self.restic("check")
            repository_ok, repository_msg = True, "restic check: no errors"
        except BackupError as e:
            repository_ok, repository_msg = False, str(e)
        return {"command": "verify", "time": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                "images": results, "repository_ok": repository_ok, "repository_msg": repository_msg,
                "failed": not (repository_ok and all(r["ok"] for r in results))}

    # -- retention -----------------------------------------------------------------------------------------------
    def prune(self, check=False):
        if not self.config.get("prune", False) and not check:
            raise BadInput("pruning the repository is off (backup_prune: false): nothing was removed")
        args = retention_args(self.config.get("retention", {}))
        self.restic("unlock")
        plan = json.loads(self.restic("forget", "--dry-run", "--json", "--tag", TAG, "--group-by", "paths",
                                      *args) or "[]")
        snapshots = self.snapshots()
        remove = []
        for group in plan:
            keep_ids = {s["id"] for s in group.get("keep") or []}
            image = urllib.parse.unquote((group.get("paths") or ["/"])[0].lstrip("/"))
            points = restore_points(snapshots, image)
            keep_ids |= fulls_needed(points, keep_ids)
            remove += [p["id"] for p in points if p["id"] not in keep_ids]
        result = {"command": "prune", "remove": sorted(remove), "changed": bool(remove), "check_mode": check}
        if remove and not check:
            self.restic("forget", *remove)
            self.restic("prune")
        return result

    def list(self, vm=None, image=None):
        snapshots = self.snapshots()
        return {"command": "list", "images": {i: restore_points(snapshots, i) for i in self.images_of(vm, image)}}


# -- status for the operator and for monitoring ----------------------------------------------------------------
def write_status(state_dir, textfile, result):
    os.makedirs(state_dir, exist_ok=True)
    path = os.path.join(state_dir, "last-%s.json" % result["command"])
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1, sort_keys=True)
    os.replace(path + ".tmp", path)
    if textfile:
        write_metrics(state_dir, textfile)


def write_metrics(state_dir, textfile):
    """node_exporter textfile collector: the last backup and drill of every image (hc_backup_*)."""
    lines = ["# HELP hc_backup_last_success_timestamp_seconds Time of the image's last good backup.",
             "# TYPE hc_backup_last_success_timestamp_seconds gauge",
             "# HELP hc_backup_last_ok Whether the image's last backup run succeeded (1) or failed (0).",
             "# TYPE hc_backup_last_ok gauge",
             "# HELP hc_backup_last_added_bytes Bytes the image's last backup added to the repository.",
             "# TYPE hc_backup_last_added_bytes gauge",
             "# HELP hc_backup_drill_ok Whether the image's last restore drill matched its snapshot (1) or not (0).",
             "# TYPE hc_backup_drill_ok gauge",
             "# HELP hc_backup_drill_timestamp_seconds Time of the image's last restore drill.",
             "# TYPE hc_backup_drill_timestamp_seconds gauge",
             "# HELP hc_backup_repository_ok Whether the last restic check of the repository found no error.",
             "# TYPE hc_backup_repository_ok gauge",
             "# HELP hc_backup_last_filesystem_consistent Whether the VM image's last backup was taken with its"
             " filesystems frozen or the VM stopped (1) or only crash-consistent (0); required=true: the VM's"
             " backup_consistency is filesystem.",
             "# TYPE hc_backup_last_filesystem_consistent gauge"]
    success = _load(os.path.join(state_dir, "success.json"))
    for name, key in (("backup", "last-backup.json"), ("verify", "last-verify.json")):
        last = _load(os.path.join(state_dir, key))
        if not last:
            continue
        when = datetime.datetime.fromisoformat(last["time"]).timestamp()
        if name == "verify":
            lines.append("hc_backup_repository_ok %d" % (1 if last.get("repository_ok") else 0))
        for r in last.get("images", []):
            label = 'image="%s"' % r["image"]
            if name == "backup":
                if r["ok"]:
                    success[r["image"]] = when
                lines.append("hc_backup_last_ok{%s} %d" % (label, 1 if r["ok"] else 0))
                lines.append("hc_backup_last_added_bytes{%s} %d" % (label, r.get("added_bytes", 0)))
                # a VM's image with freezing configured, or one that needs it
                if r.get("consistency_required") or r.get("freeze", {}).get("result", "off") != "off":
                    lines.append('hc_backup_last_filesystem_consistent{%s,required="%s"} %d' % (
                        label, "true" if r.get("consistency_required") == "filesystem" else "false",
                        1 if r.get("consistency") in SAFE_CONSISTENCY else 0))
            else:
                lines.append("hc_backup_drill_ok{%s} %d" % (label, 1 if r["ok"] else 0))
                lines.append("hc_backup_drill_timestamp_seconds{%s} %d" % (label, when))
    for image, when in sorted(success.items()):
        lines.append('hc_backup_last_success_timestamp_seconds{image="%s"} %d' % (image, when))
    with open(os.path.join(state_dir, "success.json"), "w", encoding="utf-8") as f:
        json.dump(success, f)
    os.makedirs(os.path.dirname(textfile), exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=os.path.dirname(textfile), delete=False, encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    os.chmod(f.name, 0o644)
    os.replace(f.name, textfile)


def _load(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def main(argv=None):
    ap = argparse.ArgumentParser(prog="hc-backup", description=__doc__.split("\n", 1)[0])
    ap.add_argument("--config", default="/etc/hospital-cloud/backup.json")
    sub = ap.add_subparsers(dest="command", required=True)
    for name in ("backup", "verify", "list"):
        p = sub.add_parser(name)
        p.add_argument("--vm")
        p.add_argument("--image", help="pool/image")
    p = sub.add_parser("restore")
    p.add_argument("--vm")
    p.add_argument("--image", help="pool/image")
    p.add_argument("--point", default="latest", help="latest, a snapshot name (hcbk-...) or a restic snapshot id")
    p.add_argument("--target", help="pool/image to create (default: <image>-restore-<time>)")
    p.add_argument("--overwrite", action="store_true", help="restore over the image itself (it must be closed)")
    p.add_argument("--check", action="store_true", help="say what would be done, change nothing")
    p = sub.add_parser("prune")
    p.add_argument("--check", action="store_true", help="say what would be removed, remove nothing")
    args = ap.parse_args(argv)
    try:
        with open(args.config, encoding="utf-8") as f:
            config = json.load(f)
        engine = Engine(config)
        os.makedirs(engine.state_dir, exist_ok=True)
        # one run at a time on this host (a timer firing while a restore runs waits for it)
        with open(os.path.join(engine.state_dir, "lock"), "w", encoding="utf-8") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if args.command == "restore":
                images = engine.images_of(args.vm, args.image)
                if len(images) != 1 and args.target:
                    raise BadInput("--target names one image; VM %s has %d" % (args.vm, len(images)))
                result = {"command": "restore", "restores": [
                    engine.restore(i, args.point, args.target, args.overwrite, args.check) for i in images]}
            elif args.command == "prune":
                result = engine.prune(args.check)
            else:
                result = getattr(engine, args.command)(args.vm, args.image)
            if args.command in ("backup", "verify"):
                write_status(engine.state_dir, config.get("textfile"), result)
    except BadInput as e:
        print(json.dumps({"failed": True, "msg": str(e)}))
        return EXIT_BAD_INPUT
    except (BackupError, OSError, ValueError, KeyError, subprocess.TimeoutExpired) as e:
        print(json.dumps({"failed": True, "msg": "%s: %s" % (type(e).__name__, e)}))
        return EXIT_FAILED
    print(json.dumps(result, indent=1, sort_keys=True))
    return EXIT_FAILED if result.get("failed") else 0


if __name__ == "__main__":
    sys.exit(main())
