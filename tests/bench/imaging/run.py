"""Imaging worker benchmark (figures and ratios, never gating).

One synthetic image set (512x512 8-bit and 2048x2048 16-bit PNG phantoms), measured in one run:
  (a) the design note's program: multiprocessing.Pool(4).map over paths, imread -> grey ->
      Canny(100, 200) in the children, edge arrays pickled back, the parent writes them;
  (b) this worker (spool source, process pool sized to the cores), on the same work as (a)
      ("edges" pipeline: read, grey, canny, write) and on the full default pipeline;
  (c) the bound: the same decode + pipeline + encode in a plain loop in one process, x cores;
  (d) pure OpenCV time of the same steps on preloaded arrays (no decode/encode), x cores.
Targets: (b) >= 2x (a) on 2 cores, (b) >= 85% of (c), near-linear 1 -> 2 process scaling.
Usage: run.py [--small N] [--large N] [--workdir DIR] [--json FILE]
"""

import argparse
import json
import multiprocessing
import os
import pathlib
import shutil
import sys
import tempfile
import time

import cv2

PKG = pathlib.Path(__file__).resolve().parents[3] / "roles" / "imaging_worker" / "files" / "hospital_imaging"
sys.path.insert(0, str(PKG))

from hospital_imaging import pipeline as P  # noqa: E402  pylint: disable=wrong-import-position
from hospital_imaging.logs import setup  # noqa: E402  pylint: disable=wrong-import-position
from hospital_imaging.sources.spool import SpoolSource  # noqa: E402  pylint: disable=wrong-import-position
from hospital_imaging.synthetic import phantom, png_bytes  # noqa: E402  pylint: disable=wrong-import-position
from hospital_imaging.worker import Worker  # noqa: E402  pylint: disable=wrong-import-position

EDGES = P.load("name: edges\nsteps: [read, grey, canny, write]\n")
FULL = P.default()


# -- (a) the design note's program, as described ------------------------------------------------
def _note_edges(path):
    image = cv2.imread(path)
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return cv2.Canny(gray, 100, 200)


def design_note(paths, outdir):
    with multiprocessing.get_context("fork").Pool(4) as pool:
        results = pool.map(_note_edges, paths)
    for path, edges in zip(paths, results):
        cv2.imwrite(os.path.join(outdir, os.path.basename(path) + ".edges.png"), edges)


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


def run_worker(paths, root, pipe, processes):
    spool_dir = root / ("spool-%s-%d" % (pipe.name, processes))
    spool = SpoolSource(str(spool_dir))
    for path in paths:
        spool.submit(os.path.basename(path), pathlib.Path(path).read_bytes())
    worker = Worker(spool, pipe, processes=processes, batch=2, poll=0.05)
    counts = worker.run(once=True)
    elapsed = time.monotonic() - worker.started_at  # steady state: after the pool's ~1 s start-up
    spool.close()
    assert counts["ok"] == len(paths), counts
    shutil.rmtree(spool_dir)
    return len(paths) / elapsed


def bound(paths, pipe, cores):
    cv2.setNumThreads(1)
    blobs = [(pathlib.Path(p).read_bytes(), p) for p in paths[:2]]
    for data, name in blobs:  # warm-up
        P.run(pipe, data, name)
    t0 = time.perf_counter()
    for path in paths:
        P.run(pipe, pathlib.Path(path).read_bytes(), path)
    return len(paths) / (time.perf_counter() - t0) * cores


def pure_opencv(paths, pipe, cores):
    cv2.setNumThreads(1)
    from hospital_imaging.decode import decode  # pylint: disable=import-outside-toplevel
    loaded = [decode(pathlib.Path(p).read_bytes(), p) for p in paths]
    opencv_only(pipe, loaded[0].image, loaded[0])
    t0 = time.perf_counter()
    for dec in loaded:
        opencv_only(pipe, dec.image, dec)
    return len(paths) / (time.perf_counter() - t0) * cores


def best(figures, key, value):
    figures[key] = max(figures.get(key, 0.0), value)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=64, help="512x512 8-bit images")
    parser.add_argument("--large", type=int, default=16, help="2048x2048 16-bit images")
    parser.add_argument("--repeat", type=int, default=2, help="measure each figure N times, keep the best")
    parser.add_argument("--workdir")
    parser.add_argument("--json", help="write the figures here too")
    args = parser.parse_args()
    setup("error")
    cores = len(os.sched_getaffinity(0))
    root = pathlib.Path(tempfile.mkdtemp(prefix="imaging-bench-", dir=args.workdir))
    try:
        paths = make_set(root, args.small, args.large)
        outdir = root / "note-out"
        outdir.mkdir()
        figures = {"cores": cores, "images": len(paths), "small_512_8bit": args.small, "large_2048_16bit": args.large}
        # best of --repeat, interleaved: the shared machine's background load varies over time
        for _round in range(args.repeat):
            t0 = time.perf_counter()
            design_note(paths, str(outdir))
            best(figures, "a_design_note", len(paths) / (time.perf_counter() - t0))
            for pipe in (EDGES, FULL):
                key = pipe.name
                best(figures, "b_worker_%s_1proc" % key, run_worker(paths, root, pipe, 1))
                best(figures, "b_worker_%s" % key, run_worker(paths, root, pipe, cores))
                best(figures, "c_bound_%s" % key, bound(paths, pipe, cores))
                best(figures, "d_opencv_%s" % key, pure_opencv(paths, pipe, cores))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    for key in ("edges", "default"):
        figures["ratio_b_over_a_%s" % key] = figures["b_worker_%s" % key] / figures["a_design_note"]
        figures["ratio_b_over_c_%s" % key] = figures["b_worker_%s" % key] / figures["c_bound_%s" % key]
        figures["scaling_1_to_%d_%s" % (cores, key)] = figures["b_worker_%s" % key] / figures["b_worker_%s_1proc" % key]
    print("imaging worker benchmark: %d images (%d x 512x512 8-bit, %d x 2048x2048 16-bit), %d cores, "
          "best of %d; load average %.1f" % (len(paths), args.small, args.large, cores, args.repeat, os.getloadavg()[0]))
    print("  (a) design note program (Pool(4), pickled results)  %8.1f images/s" % figures["a_design_note"])
    for key, label in (("edges", "same work as (a): grey+Canny"), ("default", "full default pipeline")):
        print("  -- %s" % label)
        print("  (b) worker, %d processes                            %8.1f images/s" % (cores, figures["b_worker_%s" % key]))
        print("  (b) worker, 1 process                               %8.1f images/s" % figures["b_worker_%s_1proc" % key])
        print("  (c) bound: plain loop x %d cores                     %8.1f images/s" % (cores, figures["c_bound_%s" % key]))
        print("  (d) pure OpenCV on preloaded arrays x %d cores       %8.1f images/s" % (cores, figures["d_opencv_%s" % key]))
        print("      b/a %.2fx (target >= 2)   b/c %.0f%% (target >= 85%%)   scaling 1->%d %.2fx (target ~%d)"
              % (figures["ratio_b_over_a_%s" % key], 100 * figures["ratio_b_over_c_%s" % key], cores,
                 figures["scaling_1_to_%d_%s" % (cores, key)], cores))
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(figures, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
