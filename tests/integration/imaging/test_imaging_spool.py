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
    ids = {name: spool.submit(name, data) for name, data in good.items()}
    ids.update((name, spool.submit(name, data)) for name, (data, _code) in bad.items())
    pipeline = tmp_path / "p.yml"
    pipeline.write_text(EDGES)
    proc = imaging_cli("process", "--source", "spool:%s" % spool.root, "--pipeline", pipeline, "--processes", 2,
                       "--no-progress", stdout=-1, stderr=-1, text=True)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err  # some jobs failed
    assert json.loads(out.strip().splitlines()[-1])["failed"] == len(bad)
    root = tmp_path / "spool"
    verify_spool(root, [ids[name] for name in good])
    for name, (_data, code) in bad.items():
        reason = json.loads((root / "failed" / (ids[name] + ".reason")).read_text())
        assert reason["code"] == code and reason["reason"]
        assert (root / "failed" / ids[name]).exists()
    logs = json_lines(err)
    assert {e["job"] for e in logs if e["event"] == "job_failed"} == {ids[name] for name in bad}
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
    after = spool.submit("after.png", png_bytes(phantom(96, 8, seed=42)))
    wait_for((root / "done" / after).exists, 30, "job after reload failure")
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
        jobs.append(spool.submit("img%03d.png" % i, png_bytes(phantom(192, 8 if i % 2 else 16, seed=i))))
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


# -- hardening (issue 14): opaque job ids, loopback metrics, links and fifos, sticky dirs, retention --

PATIENT = "Doe_John"


def _listening(port):
    """Local addresses (hex, as in /proc/net/tcp{,6}) with a socket listening on ``port``."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table, encoding="ascii") as handle:
            for line in handle.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                    found.append(local.rsplit(":", 1)[0])
    return found


def test_a_patient_name_as_file_name_reaches_no_log_file_or_metric(tmp_path, imaging_cli):
    root = tmp_path / "spool"
    SpoolSource(str(root)).close()
    named = tmp_path / ("%s_123.dcm" % PATIENT)
    named.write_bytes(open(get_testdata_file("CT_small.dcm"), "rb").read())
    submit = imaging_cli("submit", "--source", "spool:%s" % root, named, stdout=-1, stderr=-1, text=True)
    out, err = submit.communicate(timeout=60)
    assert submit.returncode == 0, err
    job = json.loads(out)["job"]  # the producer's own stdout: its file name and the job id it got
    assert PATIENT not in job and job.endswith(".dcm") and PATIENT not in err
    # a producer that drops files into inbox/ itself: a good image and a bad one (a reason file)
    (root / "inbox" / ("%s_456.png" % PATIENT)).write_bytes(png_bytes(phantom(96, 8, seed=4)))
    (root / "inbox" / ("%s_789.png" % PATIENT)).write_bytes(b"not an image, a %s letter" % PATIENT.encode())
    pipeline = tmp_path / "p.yml"
    pipeline.write_text(EDGES)
    log = tmp_path / "log"
    proc = imaging_cli("run", "--source", "spool:%s" % root, "--pipeline", pipeline, "--processes", 1,
                       "--metrics-port", 0, "--poll", 0.2, "--log-level", "debug", stderr=open(log, "w"), stdout=-1)
    listening = wait_for(lambda: [e for e in json_lines(log.read_text()) if e["event"] == "metrics_listening"],
                         60, "metrics endpoint")[0]
    # the default bind is loopback: the socket itself, not just what the log says
    assert _listening(listening["port"]) == ["0100007F"], _listening(listening["port"])
    wait_for(lambda: len(os.listdir(root / "done")) == 2 and len(os.listdir(root / "failed")) == 2, 60, "jobs")
    metrics = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % listening["port"], timeout=10).read().decode()
    assert "hospital_imaging_processed_total 2.0" in metrics
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    assert (root / "done" / job).exists()
    names = [str(p.relative_to(root)) for p in root.rglob("*")]
    texts = [log.read_text(), metrics]
    texts += [p.read_text(errors="replace") for p in root.rglob("*") if p.is_file() and p.suffix in (".json", ".reason")]
    assert len([n for n in names if n.endswith((".json", ".reason"))]) == 3  # two sidecars, one reason
    for text in names + texts:
        assert PATIENT not in text, text[:300]


def test_a_link_or_fifo_in_the_inbox_fails_without_reading_or_hanging(tmp_path, imaging_cli):
    root = tmp_path / "spool"
    SpoolSource(str(root)).close()
    for name in ("inbox", "tmp"):  # submitters write here: only a file's owner may rename or delete it
        assert os.stat(root / name).st_mode & 0o7777 == 0o1730, name
    secret = tmp_path / "secret"
    secret.write_bytes(b"SECRET-PHI:Jane^Roe,MRN 4711 " * 4)
    before = (secret.read_bytes(), os.stat(secret).st_mtime_ns)
    os.symlink(secret, root / "inbox" / "link.png")
    os.mkfifo(root / "inbox" / "pipe.png")
    pipeline = tmp_path / "p.yml"
    pipeline.write_text(EDGES)
    proc = imaging_cli("process", "--source", "spool:%s" % root, "--pipeline", pipeline, "--processes", 1,
                       "--no-progress", stdout=-1, stderr=-1, text=True)
    out, err = proc.communicate(timeout=60)  # a fifo opened for reading would wait for a writer forever
    assert proc.returncode == 1 and json.loads(out.strip().splitlines()[-1])["failed"] == 2, err
    reasons = [json.loads(p.read_text()) for p in (root / "failed").glob("*.reason")]
    assert sorted(r["code"] for r in reasons) == ["unsupported", "unsupported"]
    everything = err + out + "".join(r["reason"] for r in reasons)
    for needle in (b"SECRET", b"Jane", b"4711"):
        assert needle.decode() not in everything and needle.hex() not in everything
    assert (secret.read_bytes(), os.stat(secret).st_mtime_ns) == before
    links = [p for p in (root / "failed").iterdir() if p.is_symlink()]
    assert len(links) == 1 and os.readlink(links[0]) == str(secret)  # the link moved, the secret did not


def test_retention_purges_old_done_and_failed_inputs_and_keeps_outputs(tmp_path, imaging_cli):
    root = tmp_path / "spool"
    spool = SpoolSource(str(root))
    spool.close()
    day = 86400
    now = time.time()
    ages = {"done/old.png": 31, "done/young.png": 29, "failed/oldf.png": 31, "failed/oldf.png.reason": 31,
            "failed/youngf.png": 1, "failed/youngf.png.reason": 1, "outbox/old.png.json": 400,
            "outbox/old.png.edges.png": 400}
    for name, days in ages.items():
        (root / name).write_bytes(b"x")
        os.utime(root / name, (now - days * day, now - days * day))
    pipeline = tmp_path / "p.yml"
    pipeline.write_text(EDGES)
    base = ("process", "--source", "spool:%s" % root, "--pipeline", pipeline, "--processes", 1, "--no-progress")
    for bad in ("0", "-3"):
        refused = imaging_cli(*base, "--retention-days", bad, stdout=-1, stderr=-1, text=True)
        assert refused.wait(timeout=60) == 2 and "retention_days must be a whole number of days >= 1" in \
            refused.communicate()[1]
    config = tmp_path / "w.yml"
    for bad in ("1.5", "true", "'30'"):
        config.write_text("retention_days: %s\n" % bad)
        refused = imaging_cli(*base, "--config", config, stdout=-1, stderr=-1, text=True)
        err = refused.communicate(timeout=60)[1]
        assert refused.returncode == 2 and "retention_days must be" in err and "Traceback" not in err
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) == sorted(ages)  # untouched
    proc = imaging_cli(*base, stdout=-1, stderr=-1, text=True)  # the default: 30 days
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    left = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert left == sorted(n for n in ages if n.startswith("outbox/") or ages[n] < 30)
    purged = [e for e in json_lines(err) if e["event"] == "retention_purged"]
    assert purged and purged[0]["done"] == 1 and purged[0]["failed"] == 1 and purged[0]["older_than_days"] == 30
    assert "old.png" not in json.dumps(purged) and "oldf" not in json.dumps(purged)  # counts, no names
