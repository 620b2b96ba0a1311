"""RADOS source against the real Ceph test bed: batch, SIGKILL + lease expiry, two workers on one pool."""

import hashlib
import json
import os
import secrets
import signal
import time

import pytest
from pydicom.data import get_testdata_file

from imaging_helpers import check_sidecar, json_lines, wait_for
from hospital_imaging.sources.rados_queue import RadosSource
from testbed import clocks
from hospital_imaging.synthetic import phantom, png_bytes

pytestmark = pytest.mark.ceph

LEASE = 3
EDGES = "steps: [read, grey, {denoise: {ksize: 3}}, canny, {write: {outputs: [edges, image]}}]\n"


@pytest.fixture(name="pool", scope="module")
def fixture_pool(ceph_cluster):
    """A pool of its own for this module, deleted afterwards."""
    name = "imaging-test-%s" % secrets.token_hex(3)
    cluster = ceph_cluster.rados()
    try:
        cluster.create_pool(name)
        yield name
        ceph_cluster.cli("config", "set", "mon", "mon_allow_pool_delete", "true")
        cluster.delete_pool(name)
    finally:
        cluster.shutdown()


@pytest.fixture(name="source")
def fixture_source(ceph_cluster, pool):
    src = RadosSource(pool, conffile=ceph_cluster.conf, keyring=ceph_cluster.keyring, client=ceph_cluster.client,
                      lease=LEASE, worker_id="test-submitter")
    for ns in ("inbox", "out", "done", "failed"):  # each test starts from an empty queue
        for obj in list(src.io[ns].list_objects()):
            src.io[ns].remove_object(obj.key)
    yield src
    src.close()


def worker_args(ceph_cluster, pool, tmp_path, *extra, lease=LEASE, steps=EDGES):
    pipeline = tmp_path / "p.yml"
    pipeline.write_text(steps)
    return ("process", "--source", "rados:%s" % pool, "--ceph-conf", ceph_cluster.conf, "--keyring",
            ceph_cluster.keyring, "--client", ceph_cluster.client, "--lease", lease, "--pipeline", pipeline,
            "--no-progress") + extra


def read(ioctx, name):
    return ioctx.read(name, ioctx.stat(name)[0])


def verify_rados(src, inputs):
    """Every input: exactly one output set matching it, a done marker, nothing left in the inbox."""
    out = src.io["out"]
    names = sorted(o.key for o in out.list_objects())
    assert len([n for n in names if n.endswith(".json")]) == len(inputs)
    assert len(names) == 3 * len(inputs)
    for job, data in inputs.items():
        sidecar = json.loads(read(out, job + ".json"))
        check_sidecar(sidecar, data, {k: read(out, v["name"]) for k, v in sidecar["outputs"].items()})
        assert json.loads(read(src.io["done"], job))["job"] == job
    assert list(src.io["inbox"].list_objects()) == []


def test_rados_batch_with_dicom_and_bad_inputs(ceph_cluster, pool, source, tmp_path, imaging_cli):
    good = {"ct.dcm": open(get_testdata_file("CT_small.dcm"), "rb").read(),
            "p16.png": png_bytes(phantom(128, 16)), "p8.png": png_bytes(phantom(128, 8))}
    truncated = open(get_testdata_file("MR_truncated.dcm"), "rb").read()
    bad = {"empty.png": (b"", "empty"), "trunc.dcm": (truncated, "truncated"),
           "x.gif": (b"GIF89a" + b"\x00" * 30, "unsupported")}
    ids = {name: source.submit(name, data) for name, data in good.items()}
    ids.update((name, source.submit(name, data)) for name, (data, _code) in bad.items())
    proc = imaging_cli(*worker_args(ceph_cluster, pool, tmp_path, "--processes", 2), stdout=-1, stderr=-1, text=True)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    verify_rados(source, {ids[name]: data for name, data in good.items()})
    for name, (data, code) in bad.items():
        reason = json.loads(read(source.io["failed"], ids[name] + ".reason"))
        assert reason["code"] == code
        assert source.io["failed"].stat(ids[name])[0] == len(data)
    for value in ("CompressedSamples", "1CT1"):
        assert value not in err + out
        assert value not in read(source.io["out"], ids["ct.dcm"] + ".json").decode()
    status = imaging_cli("status", "--source", "rados:%s" % pool, "--ceph-conf", ceph_cluster.conf,
                         "--keyring", ceph_cluster.keyring, stdout=-1, text=True)
    assert json.loads(status.communicate(timeout=60)[0]) == {"inbox": 0, "done": 3, "failed": 3, "outputs": 3}


def _wall_since(start):
    """Wall seconds since ``start`` (a clocks.now()), and a text for a failed check.

    An OSD times a lease by its wall clock (ceph_clock_now, CLOCK_REALTIME; the test bed's OSDs run on this
    host): lease checks measure wall time, and say how far the wall clock moved against the boot clock (an
    NTP step during the test) when they fail.
    """
    wall, boot = clocks.elapsed(start)
    return wall, "%.2f s wall clock since; the wall clock moved %+.2f s against the boot clock" % (wall, wall - boot)


def test_claims_are_exclusive_and_expire_after_the_lease(ceph_cluster, pool, source):
    lease = 4
    source.submit("one.png", png_bytes(phantom(32, 8)))
    first = RadosSource(pool, conffile=ceph_cluster.conf, keyring=ceph_cluster.keyring, lease=lease, worker_id="first")
    other = RadosSource(pool, conffile=ceph_cluster.conf, keyring=ceph_cluster.keyring, lease=lease, worker_id="other")
    try:
        [claim] = first.claim(5)
        assert other.claim(5) == []
        time.sleep(lease / 2.0)
        renewed = clocks.now()  # the OSD sets the new expiry after this: at the earliest renewed wall time + lease
        assert first.renew([claim]) == []
        time.sleep(lease / 2.0 + 0.8)  # past the first lease, well inside the renewed one
        assert other.claim(5) == [], "the renewed claim was lost: %s" % _wall_since(renewed)[1]
        taken = []
        deadline = time.monotonic() + 20
        while not taken and time.monotonic() < deadline:  # nobody renews: the OSD drops the lock
            taken = other.claim(5)
            time.sleep(0.2)
        held, said = _wall_since(renewed)
        assert taken, "the lock did not expire: %s" % said
        assert held >= lease - 0.3, "the renewed lease ended early: %s" % said
        assert first.renew([claim]) == [claim]  # the first holder learns that it lost the job
        other.ack(taken[0], {})
        # a late lock by the first holder re-creates an empty object: the claim spots the marker
        assert first.claim(5) == [] and list(source.io["inbox"].list_objects()) == []
    finally:
        first.close()
        other.close()


def test_sigkill_mid_batch_then_restart(ceph_cluster, pool, source, tmp_path, imaging_cli):
    inputs = {}
    for i in range(200):
        data = png_bytes(phantom(128, 8 if i % 2 else 16, seed=i))
        inputs[source.submit("img%03d.png" % i, data)] = data
    done = source.io["done"]
    first = imaging_cli(*worker_args(ceph_cluster, pool, tmp_path, "--processes", 2, "--batch", 2,
                                     "--worker-id", "w1"), stderr=open(tmp_path / "log1", "w"), stdout=-1)
    wait_for(lambda: len(list(done.list_objects())) >= 50, 120, "a quarter of the batch")
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    left = [o.key for o in source.io["inbox"].list_objects()]
    assert left and len(left) < len(inputs)
    killed_at = clocks.now()
    second = imaging_cli(*worker_args(ceph_cluster, pool, tmp_path, "--processes", 2, "--worker-id", "w2", "--poll", 0.3),
                         stderr=open(tmp_path / "log2", "w"), stdout=-1)
    assert second.wait(timeout=180) == 0
    waited, said = _wall_since(killed_at)
    assert waited >= LEASE - 0.5, "the dead worker's claims ended before its lease: %s" % said
    verify_rados(source, inputs)
    second_done = {e["job"] for e in json_lines((tmp_path / "log2").read_text()) if e["event"] == "job_done"}
    assert second_done and second_done <= set(left)  # w2 did exactly what w1 left (minus acked-at-kill)
    workers = {json.loads(read(source.io["done"], job))["worker"] for job in inputs}
    assert workers == {"w1", "w2"}


def test_two_workers_on_one_pool_never_process_the_same_image_concurrently(
        ceph_cluster, pool, source, tmp_path, imaging_cli):
    inputs = {}
    for i in range(80):
        data = png_bytes(phantom(128, 8, seed=1000 + i))
        inputs[source.submit("two%03d.png" % i, data)] = data
    procs = []
    # no lease has to expire here: a long one keeps an OSD clock step (which shortens running leases,
    # see _wall_since) from handing a job that is still being processed to the other worker
    for name in ("wa", "wb"):
        procs.append(imaging_cli(*worker_args(ceph_cluster, pool, tmp_path, "--processes", 1, "--batch", 1,
                                              "--worker-id", name, lease=30),
                                 stderr=open(tmp_path / name, "w"), stdout=-1))
    for proc in procs:
        assert proc.wait(timeout=180) == 0
    intervals = {}
    for name in ("wa", "wb"):
        for e in json_lines((tmp_path / name).read_text()):
            if e["event"] == "job_done":
                intervals.setdefault(e["job"], []).append((name, e["t_claim"], e["t_ack"]))
    assert set(intervals) == set(inputs)
    workers = {span[0] for spans in intervals.values() for span in spans}
    assert workers == {"wa", "wb"}, "both workers should have taken part"
    for job, spans in intervals.items():
        spans.sort(key=lambda s: s[1])
        for (w1, _start1, end), (w2, start, _end2) in zip(spans, spans[1:]):
            assert w1 == w2 or start >= end, "%s processed concurrently by %s and %s" % (job, w1, w2)
    verify_rados(source, inputs)
    digests = {hashlib.sha256(d).hexdigest() for d in inputs.values()}
    assert len(digests) == len(inputs)


def test_a_job_running_for_several_leases_keeps_its_claim(ceph_cluster, pool, source, tmp_path, imaging_cli):
    """The controller renews its claims every lease/3: a second worker never gets a job that is still running."""
    lease = 2
    big = source.submit("big.png", png_bytes(phantom(4096, 8, seed=7)))
    slow = "steps: [read, grey, {denoise: {method: bilateral, d: 25}}, canny, {write: {outputs: [edges]}}]\n"
    logs = {name: tmp_path / name for name in ("wa", "wb")}
    wa = imaging_cli(*worker_args(ceph_cluster, pool, tmp_path, "--processes", 1, "--worker-id", "wa", "--poll", 0.2,
                                  lease=lease, steps=slow), stderr=open(logs["wa"], "w"), stdout=-1)
    wait_for(lambda: any(e["event"] == "worker_started" for e in json_lines(logs["wa"].read_text())), 60,
             "the first worker")
    time.sleep(1.0)  # wa has claimed the only job; wb looks for work for as long as it stays in the inbox
    wb = imaging_cli(*worker_args(ceph_cluster, pool, tmp_path, "--processes", 1, "--worker-id", "wb", "--poll", 0.2,
                                  lease=lease, steps=slow), stderr=open(logs["wb"], "w"), stdout=-1)
    assert wa.wait(timeout=300) == 0 and wb.wait(timeout=120) == 0
    events = {name: json_lines(log.read_text()) for name, log in logs.items()}
    done = [(name, e) for name, evs in events.items() for e in evs if e["event"] == "job_done"]
    assert [name for name, _e in done] == ["wa"], done
    assert done[0][1]["seconds"] >= 2 * lease, "the job ran %.1f s: too short to need a renewal" % done[0][1]["seconds"]
    assert not [e for evs in events.values() for e in evs if e["event"] == "claim_lost"]
    # wb tried to claim every 0.2 s while the job was in the inbox (process mode ends when the inbox is empty)
    assert any(e["event"] == "worker_started" for e in events["wb"])
    assert json.loads(read(source.io["done"], big))["worker"] == "wa"
    assert sorted(o.key for o in source.io["out"].list_objects()) == [big + ".edges.png", big + ".json"]
    assert list(source.io["inbox"].list_objects()) == []


# -- hardening (issue 14): opaque job ids, retention --

PATIENT = "Doe_John"


def test_a_patient_name_as_object_or_file_name_reaches_no_log_object_or_marker(
        ceph_cluster, pool, source, tmp_path, imaging_cli):
    named = tmp_path / ("%s_123.dcm" % PATIENT)
    named.write_bytes(open(get_testdata_file("CT_small.dcm"), "rb").read())
    submit = imaging_cli("submit", "--source", "rados:%s" % pool, "--ceph-conf", ceph_cluster.conf, "--keyring",
                         ceph_cluster.keyring, named, stdout=-1, stderr=-1, text=True)
    out, err = submit.communicate(timeout=60)
    assert submit.returncode == 0, err
    job = json.loads(out)["job"]
    assert PATIENT not in job and job.endswith(".dcm")
    # a producer writing objects into the inbox itself: a good image and a bad one
    source.io["inbox"].write_full("%s_456.png" % PATIENT, png_bytes(phantom(96, 8, seed=4)))
    source.io["inbox"].write_full("%s_789.png" % PATIENT, b"not an image, a %s letter" % PATIENT.encode())
    proc = imaging_cli(*worker_args(ceph_cluster, pool, tmp_path, "--processes", 1, "--log-level", "debug"),
                       stdout=-1, stderr=-1, text=True)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err  # the bad one failed
    assert json.loads(out.strip().splitlines()[-1])["ok"] == 2
    assert json.loads(read(source.io["done"], job))["job"] == job
    texts = [out, err]
    names = []
    for ns in ("inbox", "out", "done", "failed"):
        for obj in source.io[ns].list_objects():
            names.append(obj.key)
            if ns != "failed" or obj.key.endswith(".reason"):  # (the failed input itself is the producer's)
                if obj.key.endswith((".json", ".reason")) or ns == "done":
                    texts.append(read(source.io[ns], obj.key).decode())
    assert len([n for n in names if n.endswith(".json")]) == 2 and len([n for n in names if n.endswith(".reason")]) == 1
    for text in names + texts:
        assert PATIENT not in text, text[:300]


def test_retention_purges_old_done_and_failed_objects_and_keeps_outputs(
        ceph_cluster, pool, source, tmp_path, imaging_cli):
    import rados  # pylint: disable=import-outside-toplevel
    now = time.time()
    ages = {("done", "old"): 31, ("done", "young"): 29, ("failed", "oldf.png"): 31,
            ("failed", "oldf.png.reason"): 31, ("failed", "youngf.png"): 2, ("failed", "youngf.png.reason"): 2,
            ("out", "old.json"): 400, ("out", "old.edges.png"): 400}
    for (ns, name), days in ages.items():
        with rados.WriteOpCtx() as op:
            op.write_full(b"x")
            source.io[ns].operate_write_op(op, name, mtime=int(now - days * 86400))  # the object's mtime
    assert time.mktime(source.io["done"].stat("old")[1]) < now - 30 * 86400
    refused = imaging_cli(*worker_args(ceph_cluster, pool, tmp_path, "--retention-days", 0), stdout=-1, stderr=-1,
                          text=True)
    assert refused.wait(timeout=60) == 2 and "retention_days must be" in refused.communicate()[1]
    proc = imaging_cli(*worker_args(ceph_cluster, pool, tmp_path, "--processes", 1), stdout=-1, stderr=-1, text=True)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    left = sorted((ns, o.key) for ns in ("done", "failed", "out") for o in source.io[ns].list_objects())
    assert left == sorted(k for k, days in ages.items() if k[0] == "out" or days < 30)
    purged = [e for e in json_lines(err) if e["event"] == "retention_purged"]
    assert purged and (purged[0]["done"], purged[0]["failed"]) == (1, 1)
