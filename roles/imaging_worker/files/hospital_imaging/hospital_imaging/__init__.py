"""hospital.cloud imaging worker: a crash-safe, parallel OpenCV pipeline over medical images."""

import os

__version__ = "0.1.0"

# Parallelism comes from the process pool (one process per core, OpenCV at one thread each). The
# BLAS libraries that numpy and OpenCV each bundle (OpenBLAS) would otherwise start cores - 1
# threads apiece in every process at import: 2 x 63 idle threads per pool process on a 64-core
# host, which spin right after start-up and hold ~180 MB of address space per process. Set here,
# before any submodule imports numpy or cv2; the pool's spawned processes inherit the environment.
# An administrator's explicit setting wins.
BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
for _variable in BLAS_THREAD_VARIABLES:
    os.environ.setdefault(_variable, "1")
