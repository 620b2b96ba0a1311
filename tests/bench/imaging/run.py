"""Imaging worker benchmark (figures and ratios, never gating).

One synthetic image set (512x512 8-bit and 2048x2048 16-bit phantoms), stored as PNG and/or as
uncompressed TIFF (``--format png|tiff|both``: the same images; each set is measured and reported
separately, its rounds interleaved with the other set's), processed several times over by every
variant (``--passes``: each pass is the whole set under new names, so every timed
window covers seconds of work and the worker sees distinct jobs every time), measured in one run:
  (a) the design note's program as the issue describes it: multiprocessing.Pool(4).map over the
      paths, imread -> grey -> Canny(100, 200) in the children, the edge arrays pickled back, the
      parent writes them; the whole program is timed; OpenCV's threading left at its default (the
      note never sets it). This literal program is the reference of the ">= 2x" target.
      (a1) the same program with cv2.setNumThreads(1) in the children: an extra column ("the note
      with one obvious tuning"), reported beside (a), never combined with it;
  (b) this worker (spool source: claims by rename, flock, outputs via tmp/ + rename, sidecar with
      checksums, acknowledgement; the default batch) with N = cores pool processes, with 1 pool
      process and N cores free, and with 1 pool process on 1 core (controller, threads and pool
      pinned to one CPU, which rotates with the round: the denominator of the 1 -> N core
      scaling), on the same work as (a) ("edges" pipeline: read, grey, canny, write) and on the
      full default pipeline; timed from the warm pool to the acknowledgement of the last job (a
      service's steady state; the pool's start-up and shutdown are printed separately);
  (c) the bound: the same decode + pipeline + encode (pipeline.run on the file's bytes) in a plain
      loop in one process, no queue, no claims, no sidecars, x cores;
  (c') a diagnostic, not the bound: the plain loop of (c) in N processes at once, each on 1/N of
      the work (what this machine really gives N busy processes at that moment);
  (d) pure OpenCV time of the same steps on preloaded arrays (no decode/encode), x cores.
Targets (issue #6): (b) >= 2x (a) on 2 cores, (b) >= 85 % of (c), near-linear 1 -> 2 scaling.

Inputs: the set's files are hard-linked under one new name per pass (page cache alike for every
variant, no input writeback during any timed window); the worker gets a fresh spool per run with
those links dropped into inbox/ (what a producer's rename does). Every variant runs with the
allocator settings of the worker's pool processes (hospital_imaging.worker.tune_malloc; (a)'s
forked pool inherits them). Dirty pages are flushed (sync) before each variant, outside its window;
outputs are kept until the end of the run (ext4 makes creating files slower for ~30 s after many
deletions: no variant pays for another's clean-up).

The machine is shared: every round measures every variant once, in an order that rotates with the
round; the summary gives, for every figure and every ratio, the median over the rounds and the
spread (min - max); a ratio is computed within each round (its variants ran within a minute of
each other) and then the median taken. Before each round the benchmark waits (--settle s) for the
other tenants to use less than --quiet cores, and it prints the load average and how many cores
the other tenants used before and during each round (machine busy time minus the benchmark's own
CPU time, from /proc/stat and getrusage).
Usage: run.py [--format png|tiff|both] [--small N] [--large N] [--passes N] [--passes-full N]
              [--repeat N] [--settle S] [--quiet CORES] [--workdir DIR] [--json FILE]
"""

import argparse
import json
import multiprocessing
import os
import pathlib
import resource
import shutil
import statistics
import sys
import tempfile
import time

import cv2

PKG = pathlib.Path(__file__).resolve().parents[3] / "roles" / "imaging_worker" / "files" / "hospital_imaging"
sys.path.insert(0, str(PKG))

from hospital_imaging import pipeline as P  # noqa: E402  pylint: disable=wrong-import-position
from hospital_imaging.decode import decode  # noqa: E402  pylint: disable=wrong-import-position
from hospital_imaging.logs import setup  # noqa: E402  pylint: disable=wrong-import-position
from hospital_imaging.sources.spool import SpoolSource  # noqa: E402  pylint: disable=wrong-import-position
from hospital_imaging.synthetic import phantom, png_bytes  # noqa: E402  pylint: disable=wrong-import-position
from hospital_imaging.worker import Worker, tune_malloc  # noqa: E402  pylint: disable=wrong-import-position

EDGES = P.load("name: edges\nsteps: [read, grey, canny, write]\n")
FULL = P.default()
PIPES = {"edges": EDGES, "default": FULL}
OPENCV_DEFAULT_THREADS = cv2.getNumThreads()
HZ = os.sysconf("SC_CLK_TCK")


def cpu_seconds():
    """CPU time of this process and of its reaped children (pool processes once joined)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def machine_busy_seconds():
    """CPU seconds the whole machine spent busy (not idle, not iowait) since boot."""
    with open("/proc/stat", encoding="ascii") as handle:
        values = [int(v) for v in handle.readline().split()[1:]]
    return (sum(values) - values[3] - values[4]) / HZ


# -- (a) the design note's program, as described ------------------------------------------------
def _note_edges(path):
    image = cv2.imread(path)
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return cv2.Canny(gray, 100, 200)


def _set_threads(threads):
    cv2.setNumThreads(threads)


def design_note(paths, outdir, threads=None):
    """(images/s of the whole program: pool start, map, pickled results, the parent's writes; CPU s).

    ``threads`` None: the note as written (OpenCV's default threading, which the forked children
    inherit); an int: cv2.setNumThreads(threads) in each child (the (a1) column)."""
    cv2.setNumThreads(OPENCV_DEFAULT_THREADS)
    try:
        initializer, initargs = (None, ()) if threads is None else (_set_threads, (threads,))
        cpu0, t0 = cpu_seconds(), time.perf_counter()
        with multiprocessing.get_context("fork").Pool(4, initializer=initializer, initargs=initargs) as pool:
            results = pool.map(_note_edges, paths)
            pool.close()
            pool.join()  # (the note's `with` block terminates the pool; joined here to count its CPU)
        for path, edges in zip(paths, results):
            cv2.imwrite(os.path.join(outdir, os.path.basename(path) + ".edges.png"), edges)
        wall = time.perf_counter() - t0
        return len(paths) / wall, wall, cpu_seconds() - cpu0
    finally:
        cv2.setNumThreads(1)


# -- (d) the OpenCV work of a pipeline on a decoded array ---------------------------------------
def opencv_only(pipe, img, decoded):
    state = P.State(decoded=decoded, image=img, invert_pending=decoded.monochrome1)
    for step, params in pipe.steps:
        if step in ("read", "write"):
            continue
        if step in ("denoise", "clahe", "canny"):
            P._to_display(state)  # pylint: disable=protected-access
        P._STEPS[step](state, params)  # pylint: disable=protected-access
    return state


def tiff_bytes(img):
    """Encode as uncompressed TIFF (8- or 16-bit grey, as medical images are mostly stored)."""
    ok, buf = cv2.imencode(".tiff", img, [cv2.IMWRITE_TIFF_COMPRESSION, 1])  # 1: no compression
    if not ok:
        raise ValueError("TIFF encoding failed")
    return buf.tobytes()


ENCODERS = {"png": png_bytes, "tiff": tiff_bytes}
FORMAT_NAMES = {"png": "PNG", "tiff": "uncompressed TIFF"}


def make_set(root, small, large, fmt="png"):
    """The phantoms (the same images in every format), checked to decode to themselves (bit depth)."""
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    specs = [("s%03d" % i, 512, 8, i) for i in range(small)] + [("l%03d" % i, 2048, 16, 1000 + i) for i in range(large)]
    for name, size, bits, seed in specs:
        img = phantom(size, bits, seed=seed, noise=0.03)
        path = root / ("%s.%s" % (name, fmt))
        path.write_bytes(ENCODERS[fmt](img))
        back = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        dec = decode(path.read_bytes(), str(path))
        assert back.dtype == img.dtype and (back == img).all(), path
        assert dec.image.dtype == img.dtype and (dec.image == img).all(), path
        paths.append(str(path))
    return paths


def work_list(root, paths, passes):
    """``passes`` x the set, each pass under new names (hard links: same bytes, no copy)."""
    work_dir = root / ("work-%d" % passes)
    work_dir.mkdir(exist_ok=True)
    work = []
    for index in range(passes):
        for path in paths:
            link = work_dir / ("p%02d-%s" % (index, os.path.basename(path)))
            if not link.exists():
                os.link(path, link)
            work.append(str(link))
    return work


def busy_cores(interval=1.0):
    """Cores kept busy by anything (the other tenants: the benchmark itself is idle meanwhile)."""
    busy0, t0 = machine_busy_seconds(), time.monotonic()
    time.sleep(interval)
    return (machine_busy_seconds() - busy0) / (time.monotonic() - t0)


def settle(limit, budget):
    """Wait (up to ``budget`` s) until the other tenants use less than ``limit`` cores; return their use."""
    deadline = time.monotonic() + budget
    busy = busy_cores()
    while busy > limit and time.monotonic() < deadline:
        time.sleep(3.0)
        busy = busy_cores()
    return busy


def _proc_cpu(pid):
    with open("/proc/%d/stat" % pid, encoding="ascii") as handle:
        fields = handle.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / HZ  # utime + stime


def run_worker(work, spool_dir, pipe, processes, cpus=None):
    """(steady-state images/s, steady window s, s of pool start-up + shutdown, CPU s of the controller
    and pool in steady state). A fresh spool; the work's files dropped into its inbox/. ``cpus``: run
    the whole worker (controller, its threads, the pool processes) on these CPUs only."""
    if cpus is None:
        return _run_worker(work, spool_dir, pipe, processes)
    allowed = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)  # this thread: the threads and processes it starts inherit it
    try:
        return _run_worker(work, spool_dir, pipe, processes)
    finally:
        os.sched_setaffinity(0, allowed)


def _run_worker(work, spool_dir, pipe, processes):
    spool = SpoolSource(str(spool_dir))
    for path in work:
        os.link(path, spool_dir / "inbox" / os.path.basename(path))
    worker = Worker(spool, pipe, processes=processes, poll=0.05)  # batch: the default (4), as the CLI
    marks = []

    def cpu_now():  # this process (controller) + the live pool processes
        own = resource.getrusage(resource.RUSAGE_SELF)
        pids = list(worker._executor._processes)  # pylint: disable=protected-access
        return own.ru_utime + own.ru_stime + sum(_proc_cpu(pid) for pid in pids)
    claim = spool.claim

    def claim_and_mark(limit):
        if not marks:  # the pool is warm: its imports and start-up are not the work's
            marks.append(cpu_now())
        return claim(limit)
    spool.claim = claim_and_mark

    def progress(counts):
        if counts["ok"] + counts["failed"] == len(work):  # the last job: before the pool's shutdown
            marks.append(cpu_now())
    t0 = time.monotonic()
    counts = worker.run(once=True, progress=progress)
    wall, cpu = time.monotonic() - t0, marks[-1] - marks[0]
    spool.close()
    assert counts["ok"] == len(work) and counts["skipped"] == 0, counts
    assert len(os.listdir(spool_dir / "done")) == len(work)
    assert sum(1 for n in os.listdir(spool_dir / "outbox") if n.endswith(".json")) == len(work)
    steady = worker.finished_at - worker.started_at
    return len(work) / steady, steady, wall - steady, cpu


def _plain_loop(pipe, paths):
    for path in paths:
        P.run(pipe, pathlib.Path(path).read_bytes(), path)


def bound(work, pipe, cores):
    cv2.setNumThreads(1)
    for path in work[:1] + work[-1:]:  # warm-up
        P.run(pipe, pathlib.Path(path).read_bytes(), path)
    cpu0, t0 = time.process_time(), time.perf_counter()
    _plain_loop(pipe, work)
    wall = time.perf_counter() - t0
    return len(work) / wall * cores, wall, time.process_time() - cpu0


def _parallel_child(pipe, paths, start, conn):
    cv2.setNumThreads(1)
    tune_malloc()
    P.run(pipe, pathlib.Path(paths[0]).read_bytes(), paths[0])  # warm-up
    conn.send("ready")
    start.wait()
    t0 = time.monotonic()
    _plain_loop(pipe, paths)
    conn.send((t0, time.monotonic()))


def parallel_loop(work, pipe, cores):
    """(c'): the plain loop in `cores` processes at once, each on an interleaved share; spawned
    processes, as the worker's pool."""
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    children = []
    for index in range(cores):
        parent_end, child_end = ctx.Pipe()
        proc = ctx.Process(target=_parallel_child, args=(pipe, work[index::cores], start, child_end))
        proc.start()
        children.append((proc, parent_end))
    for _proc, conn in children:
        conn.recv()
    start.set()
    spans = [conn.recv() for _proc, conn in children]
    for proc, _conn in children:
        proc.join()
    wall = max(s[1] for s in spans) - min(s[0] for s in spans)
    return len(work) / wall, wall


def pure_opencv(loaded, pipe, cores, passes):
    cv2.setNumThreads(1)
    opencv_only(pipe, loaded[0].image, loaded[0])
    t0 = time.perf_counter()
    for _pass in range(passes):
        for dec in loaded:
            opencv_only(pipe, dec.image, dec)
    wall = time.perf_counter() - t0
    return len(loaded) * passes / wall * cores, wall


def _tasks(works, out, loaded, cores, passes, one_cpu):
    """(name, callable) of every variant; ``out``: the round's directory, one subdirectory per variant."""
    tasks = [("a_note", lambda: design_note(works["edges"], str(out / "a_note"))),
             ("a_note_1thread", lambda: design_note(works["edges"], str(out / "a_note_1thread"), 1))]
    for key, pipe in PIPES.items():
        work = works[key]
        if key == "edges":  # (the full pipeline's is left out: the run stays under ~10 min)
            tasks.append(("b_%s_1" % key, lambda p=pipe, w=work, k=key: run_worker(w, out / ("b_%s_1" % k), p, 1)))
        tasks += [("b_%s_1core" % key,
                   lambda p=pipe, w=work, k=key: run_worker(w, out / ("b_%s_1core" % k), p, 1, {one_cpu})),
                  ("b_%s_n" % key, lambda p=pipe, w=work, k=key: run_worker(w, out / ("b_%s_n" % k), p, cores)),
                  ("c_%s" % key, lambda p=pipe, w=work: bound(w, p, cores)),
                  ("c2_%s" % key, lambda p=pipe, w=work: parallel_loop(w, p, cores)),
                  ("d_%s" % key, lambda p=pipe, k=key: pure_opencv(loaded, p, cores, passes[k]))]
    return tasks


def one_round(index, works, root, loaded, cores, passes, settle_args=(0.5, 0.0)):
    """Every variant once, in an order that rotates with the round (the load drifts over time)."""
    out = root / ("round-%d" % index)
    fig = {"loadavg": os.getloadavg()[0], "busy_before": settle(*settle_args)}
    allowed = sorted(os.sched_getaffinity(0))
    fig["one_core_cpu"] = allowed[index % len(allowed)]  # the CPU of the 1-core worker: rotates too
    tasks = _tasks(works, out, loaded, cores, passes, fig["one_core_cpu"])
    shift = index % len(tasks)
    order = tasks[shift:] + tasks[:shift]
    if index % 2:
        order.reverse()
    t_round, busy0, own0 = time.monotonic(), machine_busy_seconds(), cpu_seconds()
    for name, task in order:
        # the previous variant's dirty pages are not this one's writeback; outputs are deleted only
        # at the end of the run: ext4's inode allocator skips recently deleted inodes one by one
        # (measured: creating a file then costs up to ~0.7 ms of CPU instead of ~0.01)
        os.sync()
        (out / name).mkdir(parents=True, exist_ok=True)
        value = task()
        n = len(works["edges" if name.startswith("a_") else name.split("_")[1]])
        fig[name], fig[name + "_s"] = value[0], value[1]
        if name.startswith("b_"):
            fig[name + "_startstop_s"] = value[2]
        if name.startswith(("a_", "b_", "c_")):
            fig[name + "_cpu_ms"] = value[-1] / n * 1e3
    wall = time.monotonic() - t_round
    fig["busy_during"] = max(0.0, (machine_busy_seconds() - busy0) - (cpu_seconds() - own0)) / wall
    fig["round_s"] = wall
    for key in PIPES:
        fig["r_b_over_c_%s" % key] = fig["b_%s_n" % key] / fig["c_%s" % key]
        fig["r_b_over_c2_%s" % key] = fig["b_%s_n" % key] / fig["c2_%s" % key]
        fig["r_scaling_%s" % key] = fig["b_%s_n" % key] / fig["b_%s_1core" % key]
        fig["r_b1core_over_c1_%s" % key] = fig["b_%s_1core" % key] / (fig["c_%s" % key] / cores)
        if "b_%s_1" % key in fig:
            fig["r_scaling_proc_%s" % key] = fig["b_%s_n" % key] / fig["b_%s_1" % key]
    fig["r_b_over_a_edges"] = fig["b_edges_n"] / fig["a_note"]
    fig["r_b_over_a1_edges"] = fig["b_edges_n"] / fig["a_note_1thread"]
    fig["r_c_over_a_edges"] = fig["c_edges"] / fig["a_note"]
    fig["r_c_over_a1_edges"] = fig["c_edges"] / fig["a_note_1thread"]
    return fig


def summarise(rounds):
    """key -> (median, min, max) over the rounds (ratios: of the per-round ratios)."""
    return {k: (statistics.median(r[k] for r in rounds), min(r[k] for r in rounds), max(r[k] for r in rounds))
            for k in rounds[0] if k != "one_core_cpu"}


def _fmt(stat, scale=1.0, fmt="%.1f"):
    med, low, high = (v * scale for v in stat)
    return ("%s [%s - %s]" % (fmt, fmt, fmt)) % (med, low, high)


def report(args, cores, rounds, summ, load_start, load_end, fmt="png"):
    n_set = args.small + args.large
    print("imaging worker benchmark: set of %d images (%d x 512x512 8-bit, %d x 2048x2048 16-bit %s), "
          "%d passes (%d images) per variant for read-grey-Canny, %d passes (%d images) for the full "
          "pipeline; %d cores, %d interleaved rounds"
          % (n_set, args.small, args.large, FORMAT_NAMES[fmt], args.passes, n_set * args.passes, args.passes_full,
             n_set * args.passes_full, cores, len(rounds)))
    print("  load average (1/5/15 min) at start %s, at end %s; 1-min load before each round: %s"
          % (load_start, load_end, " ".join("%.1f" % r["loadavg"] for r in rounds)))
    print("  cores used by the other tenants (of %d): before each round %s; during each round %s"
          % (os.cpu_count(), " ".join("%.2f" % r["busy_before"] for r in rounds),
             " ".join("%.2f" % r["busy_during"] for r in rounds)))
    print("  %-62s %-26s %s" % ("images/s", "median [min - max]", "window (median s of one measurement)"))
    row = "  %-62s %-26s %5.1f s"
    print(row % ("(a) design note program, literal (Pool(4), default threads)", _fmt(summ["a_note"]),
                 summ["a_note_s"][0]))
    print(row % ("(a1) the same with cv2.setNumThreads(1) per child (extra)", _fmt(summ["a_note_1thread"]),
                 summ["a_note_1thread_s"][0]))
    for key, label in (("edges", "same work as (a): read, grey, Canny, write"), ("default", "full default pipeline")):
        print("  -- %s" % label)
        print(row % ("(b) worker, %d processes" % cores, _fmt(summ["b_%s_n" % key]), summ["b_%s_n_s" % key][0]))
        print(row % ("(b) worker, 1 process on 1 core (all pinned to one CPU)", _fmt(summ["b_%s_1core" % key]),
                     summ["b_%s_1core_s" % key][0]))
        free = "b_%s_1" % key in summ
        if free:
            print(row % ("(b) worker, 1 pool process, %d cores free" % cores, _fmt(summ["b_%s_1" % key]),
                         summ["b_%s_1_s" % key][0]))
        print(row % ("(c) bound: plain loop in 1 process x %d" % cores, _fmt(summ["c_%s" % key]),
                     summ["c_%s_s" % key][0]))
        print(row % ("(c') plain loop in %d processes at once (diagnostic)" % cores, _fmt(summ["c2_%s" % key]),
                     summ["c2_%s_s" % key][0]))
        print(row % ("(d) pure OpenCV on preloaded arrays x %d" % cores, _fmt(summ["d_%s" % key]),
                     summ["d_%s_s" % key][0]))
        print("      pool start-up + shutdown (not in (b)): %.2f s (1 process), %.2f s (%d)"
              % (summ["b_%s_1core_startstop_s" % key][0], summ["b_%s_n_startstop_s" % key][0], cores))
        cpu = {v: summ["%s_cpu_ms" % v][0] for v in ("b_%s_n" % key, "b_%s_1core" % key, "c_%s" % key)}
        print("      CPU ms per image (median): (b) %d processes %.1f, (b) 1 process on 1 core %.1f, (c) %.1f%s"
              % (cores, cpu["b_%s_n" % key], cpu["b_%s_1core" % key], cpu["c_%s" % key],
                 ", (a) %.1f, (a1) %.1f" % (summ["a_note_cpu_ms"][0], summ["a_note_1thread_cpu_ms"][0])
                 if key == "edges" else ""))
        print("      CPU efficiency (CPU per image of (c) / of (b)): %.0f %% (%d processes), %.0f %% (1 process on 1 core)"
              % (100 * cpu["c_%s" % key] / cpu["b_%s_n" % key], cores, 100 * cpu["c_%s" % key] / cpu["b_%s_1core" % key]))
        print("      decode + encode + statistics: %.0f %% of the bound's time (1 - c/d, medians)"
              % (100 * (1 - summ["c_%s" % key][0] / summ["d_%s" % key][0])))
        print("      ratios, per round then median [min - max]:")
        if key == "edges":
            print("        b/a  %s x   (target >= 2; the ceiling c/a: %s x)"
                  % (_fmt(summ["r_b_over_a_edges"], fmt="%.2f"), _fmt(summ["r_c_over_a_edges"], fmt="%.2f")))
            print("        b/a1 %s x   (extra: against the 1-thread variant; c/a1: %s x)"
                  % (_fmt(summ["r_b_over_a1_edges"], fmt="%.2f"), _fmt(summ["r_c_over_a1_edges"], fmt="%.2f")))
        print("        b/c  %s %%   (target >= 85 %%)" % _fmt(summ["r_b_over_c_%s" % key], 100, "%.0f"))
        print("        b/c' %s %%   (diagnostic)" % _fmt(summ["r_b_over_c2_%s" % key], 100, "%.0f"))
        print("        scaling 1 -> %d cores %s x   (target: near %d; b on 1 core / (c / %d): %s %%)"
              % (cores, _fmt(summ["r_scaling_%s" % key], fmt="%.2f"), cores, cores,
                 _fmt(summ["r_b1core_over_c1_%s" % key], 100, "%.0f")))
        if free:
            print("        scaling 1 -> %d pool processes, %d cores free in both %s x"
                  % (cores, cores, _fmt(summ["r_scaling_proc_%s" % key], fmt="%.2f")))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--format", choices=("png", "tiff", "both"), default="png",
                        help="image set(s): the phantoms as PNG, as uncompressed TIFF, or both (each reported "
                             "separately; both: ~1.5x the run time)")
    parser.add_argument("--small", type=int, default=64, help="512x512 8-bit images in the set")
    parser.add_argument("--large", type=int, default=16, help="2048x2048 16-bit images in the set")
    parser.add_argument("--passes", type=int, default=8,
                        help="times each variant processes the set (read-grey-Canny work)")
    parser.add_argument("--passes-full", type=int, default=3, help="the same for the full default pipeline")
    parser.add_argument("--repeat", type=int, default=5, help="interleaved rounds (median and spread reported)")
    parser.add_argument("--settle", type=float, default=20.0,
                        help="before each round wait up to N s for the other tenants to use < --quiet cores")
    parser.add_argument("--quiet", type=float, default=0.5, help="see --settle")
    parser.add_argument("--workdir")
    parser.add_argument("--json", help="write the figures (every round and the summary) here too")
    args = parser.parse_args()
    setup("error")
    # every variant ((a)'s forked pool too) with the allocator settings of the worker's pool processes
    tuned = tune_malloc()
    cores = len(os.sched_getaffinity(0))
    load_start = " ".join("%.2f" % v for v in os.getloadavg())
    root = pathlib.Path(tempfile.mkdtemp(prefix="imaging-bench-", dir=args.workdir))
    passes = {"edges": args.passes, "default": args.passes_full}
    formats = ("png", "tiff") if args.format == "both" else (args.format,)
    print("settings: --format %s --small %d --large %d --passes %d --passes-full %d --repeat %d --settle %g "
          "--quiet %g; %d cores" % (args.format, args.small, args.large, args.passes, args.passes_full,
                                    args.repeat, args.settle, args.quiet, cores), flush=True)
    sets, rounds = {}, {fmt: [] for fmt in formats}
    try:
        for fmt in formats:
            paths = make_set(root / fmt, args.small, args.large, fmt)
            sets[fmt] = ({key: work_list(root / fmt, paths, count) for key, count in passes.items()},
                         [decode(pathlib.Path(p).read_bytes(), p) for p in paths])
        for index in range(args.repeat):
            # the sets' rounds interleaved, in an order that alternates (the load drifts over time)
            for fmt in (formats if index % 2 == 0 else formats[::-1]):
                works, loaded = sets[fmt]
                rounds[fmt].append(one_round(index, works, root / fmt, loaded, cores, passes, (args.quiet, args.settle)))
                fig = rounds[fmt][-1]
                print("  %-4s round %d (%.0f s): others %.2f cores before, %.2f during, load %.1f | edges: a %.1f  a1 %.1f  "
                      "b1core %.1f  b1 %.1f  b %.1f  c %.1f  c' %.1f  b/a %.2f  b/c %.0f %%  scaling %.2f | full: b %.1f  "
                      "c %.1f  b/c %.0f %%"
                      % (fmt, index + 1, fig["round_s"], fig["busy_before"], fig["busy_during"], fig["loadavg"],
                         fig["a_note"], fig["a_note_1thread"], fig["b_edges_1core"], fig["b_edges_1"], fig["b_edges_n"],
                         fig["c_edges"], fig["c2_edges"], fig["r_b_over_a_edges"], 100 * fig["r_b_over_c_edges"],
                         fig["r_scaling_edges"], fig["b_default_n"], fig["c_default"], 100 * fig["r_b_over_c_default"]),
                      flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    load_end = " ".join("%.2f" % v for v in os.getloadavg())
    summaries = {fmt: summarise(rounds[fmt]) for fmt in formats}
    for fmt in formats:
        print("\n=== image set: %s ===" % FORMAT_NAMES[fmt])
        report(args, cores, rounds[fmt], summaries[fmt], load_start, load_end, fmt)
    print("  allocator: %s for every variant" % ("glibc mallopt as in the worker's pool processes" if tuned
                                                 else "defaults (mallopt not available)"))
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(
            {"cores": cores, "small_512_8bit": args.small, "large_2048_16bit": args.large, "passes": passes,
             "load_start": load_start, "load_end": load_end, "formats": list(formats),
             "sets": {fmt: {"rounds": rounds[fmt],
                            "summary": {k: {"median": v[0], "min": v[1], "max": v[2]}
                                        for k, v in summaries[fmt].items()}} for fmt in formats}},
            indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
