"""Imaging worker benchmark (figures and ratios, never gating).

One synthetic image set (512x512 8-bit and 2048x2048 16-bit PNG phantoms), measured in one run:
  (a) the design note's program: multiprocessing.Pool(4).map over paths, imread -> grey ->
      Canny(100, 200) in the children, edge arrays pickled back, the parent writes them; the
      whole program is timed, with OpenCV's default threading (as the note has it) and with one
      OpenCV thread per process: the baseline is the faster of the two in each round;
  (b) this worker (spool source, process pool of 1 and of N = cores processes), on the same work
      as (a) ("edges" pipeline: read, grey, canny, write) and on the full default pipeline; timed
      from the warm pool to the acknowledgement of the last job (the steady state of a service;
      the pool's start-up and shutdown are printed separately);
  (c) the bound: the same decode + pipeline + encode (pipeline.run on the file's bytes) in a plain
      loop in one process, no queue, no claims, no sidecars, x cores;
  (c') a diagnostic, not the bound: the plain loop of (c) in N processes at once, each on 1/N of
      the set (what this machine really gives N busy processes: shared caches, memory bandwidth,
      the other tenants);
  (d) pure OpenCV time of the same steps on preloaded arrays (no decode/encode), x cores.
Targets (issue #6): (b) >= 2x (a) on 2 cores, (b) >= 85 % of (c), near-linear 1 -> 2 scaling.

Every variant runs with the allocator settings of the worker's pool processes
(hospital_imaging.worker.tune_malloc; (a)'s forked pool inherits them), so none of them pays page
faults that the others do not. The machine is shared: every round measures every variant once, in
a rotating order, and the summary gives the median and the best of each figure over the rounds, the ratios as the median of
the per-round ratios (a round's variants ran within seconds of each other) and as the ratio of
the bests, and the load average before every round.
Before each round the benchmark waits (--settle, up to 60 s) for the other tenants to use less
than half a core, and prints how busy the machine was.
Usage: run.py [--small N] [--large N] [--repeat N] [--settle S] [--quiet CORES] [--workdir DIR] [--json FILE]
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


def cpu_seconds():
    """CPU time of this process and of its reaped children (pool processes once joined)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


# -- (a) the design note's program, as described ------------------------------------------------
def _note_edges(path):
    image = cv2.imread(path)
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return cv2.Canny(gray, 100, 200)


def design_note(paths, outdir, threads=OPENCV_DEFAULT_THREADS):
    """(images/s of the whole program: pool start, map, pickled results, the parent's writes; CPU s).

    The note leaves OpenCV's threading alone (``threads``: its default); the benchmark also runs
    it with 1 OpenCV thread per process and compares the worker with the faster of the two."""
    cv2.setNumThreads(threads)
    try:
        cpu0, t0 = cpu_seconds(), time.perf_counter()
        with multiprocessing.get_context("fork").Pool(4) as pool:
            results = pool.map(_note_edges, paths)
            pool.close()
            pool.join()  # (the note's `with` block terminates the pool; joined here to count its CPU)
        for path, edges in zip(paths, results):
            cv2.imwrite(os.path.join(outdir, os.path.basename(path) + ".edges.png"), edges)
        return len(paths) / (time.perf_counter() - t0), cpu_seconds() - cpu0
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


def make_set(root, small, large):
    paths = []
    for i in range(small):
        path = root / ("s%03d.png" % i)
        path.write_bytes(png_bytes(phantom(512, 8, seed=i, noise=0.03)))
        paths.append(str(path))
    for i in range(large):
        path = root / ("l%03d.png" % i)
        path.write_bytes(png_bytes(phantom(2048, 16, seed=1000 + i, noise=0.03)))
        paths.append(str(path))
    return paths


def busy_cores(interval=1.0):
    """Cores kept busy by anything (the other tenants: the benchmark itself is idle meanwhile)."""
    def sample():
        with open("/proc/stat", encoding="ascii") as handle:
            values = [int(v) for v in handle.readline().split()[1:]]
        return sum(values), values[3] + values[4]  # total, idle + iowait
    total0, idle0 = sample()
    time.sleep(interval)
    total1, idle1 = sample()
    return (1.0 - (idle1 - idle0) / max(1, total1 - total0)) * os.cpu_count()


def settle(limit, budget):
    """Wait (up to ``budget`` s) until the other tenants use less than ``limit`` cores; return their use."""
    deadline = time.monotonic() + budget
    busy = busy_cores()
    while busy > limit and time.monotonic() < deadline:
        time.sleep(4.0)
        busy = busy_cores()
    return busy


def _proc_cpu(pid):
    with open("/proc/%d/stat" % pid, encoding="ascii") as handle:
        fields = handle.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def run_worker(paths, root, pipe, processes):
    """(steady-state images/s, s of pool start-up + shutdown, CPU s of the controller and pool in steady state)."""
    spool_dir = root / ("spool-%s-%d" % (pipe.name, processes))
    spool = SpoolSource(str(spool_dir))
    for path in paths:
        spool.submit(os.path.basename(path), pathlib.Path(path).read_bytes())
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
        if counts["ok"] + counts["failed"] == len(paths):  # the last job: before the pool's shutdown
            marks.append(cpu_now())
    t0 = time.monotonic()
    counts = worker.run(once=True, progress=progress)
    wall, cpu = time.monotonic() - t0, marks[-1] - marks[0]
    spool.close()
    assert counts["ok"] == len(paths) and counts["skipped"] == 0, counts
    assert len(os.listdir(spool_dir / "done")) == len(paths)
    shutil.rmtree(spool_dir)
    steady = worker.finished_at - worker.started_at
    return len(paths) / steady, wall - steady, cpu


def _plain_loop(pipe, paths):
    for path in paths:
        P.run(pipe, pathlib.Path(path).read_bytes(), path)


def bound(paths, pipe, cores):
    cv2.setNumThreads(1)
    for path in paths[:1] + paths[-1:]:  # warm-up
        P.run(pipe, pathlib.Path(path).read_bytes(), path)
    cpu0, t0 = time.process_time(), time.perf_counter()
    _plain_loop(pipe, paths)
    return len(paths) / (time.perf_counter() - t0) * cores, time.process_time() - cpu0


def _parallel_child(pipe, paths, start, conn):
    cv2.setNumThreads(1)
    P.run(pipe, pathlib.Path(paths[0]).read_bytes(), paths[0])  # warm-up
    conn.send("ready")
    start.wait()
    t0 = time.monotonic()
    _plain_loop(pipe, paths)
    conn.send((t0, time.monotonic()))


def parallel_loop(paths, pipe, cores):
    """(c'): the plain loop in `cores` processes at once (forked), each on an interleaved share."""
    ctx = multiprocessing.get_context("fork")
    start = ctx.Event()
    children = []
    for index in range(cores):
        parent_end, child_end = ctx.Pipe()
        proc = ctx.Process(target=_parallel_child, args=(pipe, paths[index::cores], start, child_end))
        proc.start()
        children.append((proc, parent_end))
    for _proc, conn in children:
        conn.recv()
    start.set()
    spans = [conn.recv() for _proc, conn in children]
    for proc, _conn in children:
        proc.join()
    return len(paths) / (max(s[1] for s in spans) - min(s[0] for s in spans))


def pure_opencv(loaded, pipe, cores):
    cv2.setNumThreads(1)
    opencv_only(pipe, loaded[0].image, loaded[0])
    t0 = time.perf_counter()
    for dec in loaded:
        opencv_only(pipe, dec.image, dec)
    return len(loaded) / (time.perf_counter() - t0) * cores


def one_round(index, paths, root, loaded, cores, settle_args=(0.5, 0.0)):
    """Every variant once, in an order that rotates with the round (the load drifts over time)."""
    outdir = root / "note-out"
    outdir.mkdir(exist_ok=True)
    fig = {"loadavg": os.getloadavg()[0], "busy_before": settle(*settle_args)}
    tasks = [("a_note_default_threads", lambda: design_note(paths, str(outdir))),
             ("a_note_1_thread", lambda: design_note(paths, str(outdir), 1))]
    for key, pipe in PIPES.items():
        tasks += [("b_worker_%s_1proc" % key, lambda p=pipe: run_worker(paths, root, p, 1)),
                  ("b_worker_%s" % key, lambda p=pipe: run_worker(paths, root, p, cores)),
                  ("c_bound_%s" % key, lambda p=pipe: bound(paths, p, cores)),
                  ("c2_parallel_loop_%s" % key, lambda p=pipe: parallel_loop(paths, p, cores)),
                  ("d_opencv_%s" % key, lambda p=pipe: pure_opencv(loaded, p, cores))]
    shift = index % len(tasks)
    order = tasks[shift:] + tasks[:shift]
    if index % 2:
        order.reverse()
    n = len(paths)
    for name, task in order:
        value = task()
        if name.startswith("b_"):
            fig[name], fig[name + "_startstop_s"], cpu = value
            fig[name + "_cpu_ms"] = cpu / n * 1e3
        elif name.startswith(("a_", "c_")):
            fig[name], cpu = value
            fig[name + "_cpu_ms"] = cpu / n * 1e3
        else:
            fig[name] = value
    fig["a_design_note"] = max(fig["a_note_default_threads"], fig["a_note_1_thread"])
    fig["a_design_note_cpu_ms"] = min(fig["a_note_default_threads_cpu_ms"], fig["a_note_1_thread_cpu_ms"])
    for key in PIPES:
        fig["ratio_b_over_a_%s" % key] = fig["b_worker_%s" % key] / fig["a_design_note"]
        fig["ratio_b_over_c_%s" % key] = fig["b_worker_%s" % key] / fig["c_bound_%s" % key]
        fig["ratio_b_over_c2_%s" % key] = fig["b_worker_%s" % key] / fig["c2_parallel_loop_%s" % key]
        fig["ratio_c_over_a_%s" % key] = fig["c_bound_%s" % key] / fig["a_design_note"]
        fig["scaling_%s" % key] = fig["b_worker_%s" % key] / fig["b_worker_%s_1proc" % key]
    return fig


def summarise(rounds):
    keys = [k for k in rounds[0] if k not in ("loadavg", "busy_before")]
    med = {k: statistics.median(r[k] for r in rounds) for k in keys}
    top = {k: max(r[k] for r in rounds) for k in keys if not k.startswith(("ratio_", "scaling_"))}
    for key in PIPES:  # ratios of the bests
        top["ratio_b_over_a_%s" % key] = top["b_worker_%s" % key] / top["a_design_note"]
        top["ratio_b_over_c_%s" % key] = top["b_worker_%s" % key] / top["c_bound_%s" % key]
        top["ratio_b_over_c2_%s" % key] = top["b_worker_%s" % key] / top["c2_parallel_loop_%s" % key]
        top["ratio_c_over_a_%s" % key] = top["c_bound_%s" % key] / top["a_design_note"]
        top["scaling_%s" % key] = top["b_worker_%s" % key] / top["b_worker_%s_1proc" % key]
    return med, top


def report(args, cores, rounds, med, top, load_start, load_end):
    n = args.small + args.large
    print("imaging worker benchmark: %d images (%d x 512x512 8-bit, %d x 2048x2048 16-bit PNG), %d cores, "
          "%d interleaved rounds" % (n, args.small, args.large, cores, len(rounds)))
    print("  load average (1/5/15 min) at start %s, at end %s; before each round: %s"
          % (load_start, load_end, " ".join("%.1f" % r["loadavg"] for r in rounds)))
    print("  cores busy with other work just before each round (of %d): %s"
          % (os.cpu_count(), " ".join("%.1f" % r["busy_before"] for r in rounds)))
    print("  images/s                                               median      best")
    row = "  %-52s %8.1f  %8.1f"
    print(row % ("(a) design note program (Pool(4), pickled results)", med["a_note_default_threads"],
                 top["a_note_default_threads"]))
    print(row % ("(a) the same with 1 OpenCV thread per process", med["a_note_1_thread"], top["a_note_1_thread"]))
    print(row % ("(a) per round the faster of the two: the baseline", med["a_design_note"], top["a_design_note"]))
    for key, label in (("edges", "same work as (a): read, grey, Canny, write"), ("default", "full default pipeline")):
        print("  -- %s" % label)
        print(row % ("(b) worker, %d processes" % cores, med["b_worker_%s" % key], top["b_worker_%s" % key]))
        print(row % ("(b) worker, 1 process", med["b_worker_%s_1proc" % key], top["b_worker_%s_1proc" % key]))
        print(row % ("(c) bound: plain loop in 1 process x %d" % cores, med["c_bound_%s" % key],
                     top["c_bound_%s" % key]))
        print(row % ("(c') plain loop in %d processes at once (diagnostic)" % cores,
                     med["c2_parallel_loop_%s" % key], top["c2_parallel_loop_%s" % key]))
        print(row % ("(d) pure OpenCV on preloaded arrays x %d" % cores, med["d_opencv_%s" % key],
                     top["d_opencv_%s" % key]))
        print("      pool start-up + shutdown (not in (b)): %.2f s (1 process), %.2f s (%d)"
              % (med["b_worker_%s_1proc_startstop_s" % key], med["b_worker_%s_startstop_s" % key], cores))
        print("      CPU ms per image: (b) %d processes %.1f, (b) 1 process %.1f, (c) %.1f, (a) %.1f (the lower variant)"
              % (cores, med["b_worker_%s_cpu_ms" % key], med["b_worker_%s_1proc_cpu_ms" % key],
                 med["c_bound_%s_cpu_ms" % key], med["a_design_note_cpu_ms"]))
        print("      CPU efficiency (CPU per image of (c) / of (b)): %.0f %% (%d processes), %.0f %% (1 process)"
              % (100 * med["c_bound_%s_cpu_ms" % key] / med["b_worker_%s_cpu_ms" % key], cores,
                 100 * med["c_bound_%s_cpu_ms" % key] / med["b_worker_%s_1proc_cpu_ms" % key]))
        print("      decode + encode + statistics: %.0f %% of the bound's time (1 - c/d)"
              % (100 * (1 - med["c_bound_%s" % key] / med["d_opencv_%s" % key])))
        for label, fig in (("median of per-round ratios", med), ("ratio of the bests        ", top)):
            print("      %s: b/a %.2fx (target >= 2; c/a %.2fx is its ceiling)   b/c %.0f %% (target >= 85 %%)"
                  "   b/c' %.0f %%   scaling 1->%d %.2fx"
                  % (label, fig["ratio_b_over_a_%s" % key], fig["ratio_c_over_a_%s" % key],
                     100 * fig["ratio_b_over_c_%s" % key], 100 * fig["ratio_b_over_c2_%s" % key], cores,
                     fig["scaling_%s" % key]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=64, help="512x512 8-bit images")
    parser.add_argument("--large", type=int, default=16, help="2048x2048 16-bit images")
    parser.add_argument("--repeat", type=int, default=5, help="interleaved rounds (median and best reported)")
    parser.add_argument("--settle", type=float, default=60.0,
                        help="before each round wait up to N s for the other tenants to use < --quiet cores")
    parser.add_argument("--quiet", type=float, default=0.5, help="see --settle")
    parser.add_argument("--workdir")
    parser.add_argument("--json", help="write the figures (every round, median, best) here too")
    args = parser.parse_args()
    setup("error")
    # every variant ((a)'s forked pool too) with the allocator settings of the worker's pool processes
    tuned = tune_malloc()
    cores = len(os.sched_getaffinity(0))
    load_start = " ".join("%.2f" % v for v in os.getloadavg())
    root = pathlib.Path(tempfile.mkdtemp(prefix="imaging-bench-", dir=args.workdir))
    try:
        paths = make_set(root, args.small, args.large)
        loaded = [decode(pathlib.Path(p).read_bytes(), p) for p in paths]
        rounds = []
        for index in range(args.repeat):
            rounds.append(one_round(index, paths, root, loaded, cores, (args.quiet, args.settle)))
            print("  round %d: others busy %.1f cores, load %.1f  a %.1f  b(edges) %.1f  c(edges) %.1f  b(full) %.1f  c(full) %.1f"
                  % (index + 1, rounds[-1]["busy_before"], rounds[-1]["loadavg"], rounds[-1]["a_design_note"], rounds[-1]["b_worker_edges"],
                     rounds[-1]["c_bound_edges"], rounds[-1]["b_worker_default"], rounds[-1]["c_bound_default"]),
                  flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    load_end = " ".join("%.2f" % v for v in os.getloadavg())
    med, top = summarise(rounds)
    report(args, cores, rounds, med, top, load_start, load_end)
    print("  allocator: %s for every variant" % ("glibc mallopt as in the worker's pool processes" if tuned
                                                 else "defaults (mallopt not available)"))
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(
            {"cores": cores, "small_512_8bit": args.small, "large_2048_16bit": args.large,
             "load_start": load_start, "load_end": load_end, "rounds": rounds, "median": med, "best": top},
            indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
