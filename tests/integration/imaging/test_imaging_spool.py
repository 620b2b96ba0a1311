"""Spool source against a real directory: mixed batch, service mode with metrics, SIGKILL recovery."""

import json
import os
import signal
import time
import urllib.request

import numpy as np
from pydicom.data import get_testdata_file

from imaging_helpers import check_sidecar, json_lines, wait_for
from hospital_imaging.sources.spool import SpoolSource
from hospital_imaging.synthetic import phantom, png_bytes

PHI = ("CompressedSamples", "1CT1", "4MR1")
EDGES = "steps: [read, grey, {denoise: {ksize: 3}}, canny, {write: {outputs: [edges, image]}}]\n"


def verify_spool(root, jobs):
    """Every job: input in done/, exactly one output set whose sidecar matches it; nothing stuck."""
    outbox = root / "outbox"
    for job in jobs:
        source = (root / "done" / job).read_bytes()
        sidecar = json.loads((outbox / (job + ".json")).read_text())
        outputs = {k: (outbox / v["name"]).read_bytes() for k, v in sidecar["outputs"].items()}
        check_sidecar(sidecar, source, outputs)
    names = sorted(os.listdir(outbox))
    assert len([n for n in names if n.endswith(".json")]) == len(jobs)
    assert len(names) == 3 * len(jobs)  # edges, image, sidecar: no duplicates, no partial files
    assert os.listdir(root / "inbox") == [] and os.listdir(root / "claimed") == []


def test_process_mixed_batch_good_and_bad_inputs(tmp_path, imaging_cli):
    spool = SpoolSource(str(tmp_path / "spool"))
    good = {"ct.dcm": open(get_testdata_file("CT_small.dcm"), "rb").read(),
            "mr.dcm": open(get_testdata_file("MR_small.dcm"), "rb").read(),
            "p8.png": png_bytes(phantom(128, 8)), "p16.png": png_bytes(phantom(128, 16))}
    truncated = open(get_testdata_file("MR_truncated.dcm"), "rb").read()
    bad = {"empty.png": (b"", "empty"), "corrupt.png": (b"\x89PNG\r\n\x1a\n" + b"\x01" * 99, "corrupt"),
           "trunc.dcm": (truncated, "truncated"), "one.png": (png_bytes(np.zeros((1, 1), np.uint8)), "too_small"),
           "x.gif": (b"GIF89a" + b"\x00" * 30, "unsupported"),
           "jls.dcm": (open(get_testdata_file("MR_small_jpeg_ls_lossless.dcm"), "rb").read(), "unsupported")}
    for job, data in good.items():
        spool.submit(job, data)
    for job, (data, _code) in bad.items():
        spool.submit(job, data)
    pipeline = tmp_path / "p.yml"
    pipeline.write_text(EDGES)
    proc = imaging_cli("process", "--source", "spool:%s" % spool.root, "--pipeline", pipeline, "--processes", 2,
                       "--no-progress", stdout=-1, stderr=-1, text=True)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err  # some jobs failed
    assert json.loads(out.strip().splitlines()[-1])["failed"] == len(bad)
    root = tmp_path / "spool"
    verify_spool(root, list(good))
    for job, (_data, code) in bad.items():
        reason = json.loads((root / "failed" / (job + ".reason")).read_text())
        assert reason["code"] == code and reason["reason"]
        assert (root / "failed" / job).exists()
    logs = json_lines(err)
    assert {e["job"] for e in logs if e["event"] == "job_failed"} == set(bad)
    everything = err + out + "".join(p.read_text(errors="replace") for p in root.rglob("*.json")) \
        + "".join(p.read_text() for p in (root / "failed").glob("*.reason"))
    for value in PHI:
        assert value not in everything
    for png in (root / "outbox").glob("*.png"):
        assert not any(v.encode() in png.read_bytes() for v in PHI)
    status = imaging_cli("status", "--source", "spool:%s" % spool.root, stdout=-1, text=True)
    counts = json.loads(status.communicate(timeout=60)[0])
    assert counts["done"] == len(good) and counts["failed"] == len(bad) and counts["inbox"] == 0


def test_service_metrics_reload_and_sigterm(tmp_path, imaging_cli):
    root = tmp_path / "spool"
    spool = SpoolSource(str(root))
    pipeline = tmp_path / "p.yml"
    pipeline.write_text(EDGES)
    log = open(tmp_path / "log", "w+")
    proc = imaging_cli("run", "--source", "spool:%s" % root, "--pipeline", pipeline, "--processes", 2,
                       "--metrics-port", 0, "--poll", 0.2, stderr=log, stdout=-1)
    listening = wait_for(lambda: [e for e in json_lines((tmp_path / "log").read_text())
                                  if e["event"] == "metrics_listening"], 60, "metrics endpoint")
    assert listening[0]["bind"] == "127.0.0.1"
    for i in range(6):
        spool.submit("img%d.png" % i, png_bytes(phantom(96, 8, seed=i)))
    spool.submit("bad.png", b"not an image at all")
    wait_for(lambda: len(os.listdir(root / "done")) == 6 and len(os.listdir(root / "failed")) == 2, 60, "jobs")
    url = "http://127.0.0.1:%d/metrics" % listening[0]["port"]
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    assert "hospital_imaging_processed_total 6.0" in text
    assert 'hospital_imaging_failed_total{reason="unsupported"} 1.0' in text
    assert "hospital_imaging_latency_seconds_count 6.0" in text
    assert "hospital_imaging_queue_depth" in text
    # a broken pipeline file on a running service: clear error, old pipeline kept, work goes on
    time.sleep(0.05)
    pipeline.write_text("steps: [read, grey, sharpen, canny, write]\n")
    os.utime(pipeline, (time.time() + 5, time.time() + 5))
    wait_for(lambda: [e for e in json_lines((tmp_path / "log").read_text())
                      if e["event"] == "pipeline_reload_failed"], 30, "reload failure")
    spool.submit("after.png", png_bytes(phantom(96, 8, seed=42)))
    wait_for((root / "done" / "after.png").exists, 30, "job after reload failure")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    events = json_lines((tmp_path / "log").read_text())
    failed = [e for e in events if e["event"] == "pipeline_reload_failed"][0]
    assert "unknown step 'sharpen'" in failed["reason"]
    assert events[-1]["event"] == "worker_stopped" and events[-1]["released"] == 0
    assert os.listdir(root / "workers") == []


def test_sigkill_mid_batch_then_restart_gives_exactly_one_output_each(tmp_path, imaging_cli):
    root = tmp_path / "spool"
    spool = SpoolSource(str(root))
    jobs = []
    for i in range(240):
        job = "img%03d.png" % i
        spool.submit(job, png_bytes(phantom(192, 8 if i % 2 else 16, seed=i)))
        jobs.append(job)
    spool.close()
    pipeline = tmp_path / "p.yml"
    pipeline.write_text(EDGES)
    args = ("process", "--source", "spool:%s" % root, "--pipeline", pipeline, "--processes", 2, "--batch", 2)
    first = imaging_cli(*args, stderr=open(tmp_path / "log1", "w"), stdout=-1)
    wait_for(lambda: len(os.listdir(root / "done")) >= 60, 120, "a quarter of the batch")
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    stuck = os.listdir(root / "claimed")
    assert stuck, "the kill should leave claimed work behind"
    assert len(os.listdir(root / "done")) < len(jobs)
    second = imaging_cli(*args, stderr=open(tmp_path / "log2", "w"), stdout=-1)
    assert second.wait(timeout=180) == 0
    started = [e for e in json_lines((tmp_path / "log2").read_text()) if e["event"] == "worker_started"][0]
    assert started["recovered"] == len(stuck)
    verify_spool(root, jobs)
    assert os.listdir(root / "failed") == [] and os.listdir(root / "tmp") == []
