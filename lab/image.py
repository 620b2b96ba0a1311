"""The cached Debian bookworm base (built once by base-image.sh, reused from its cache)."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SCRIPT = Path(__file__).with_name("base-image.sh")


@dataclass(frozen=True)
class BaseImage:
    root: Path

    @property
    def rootfs(self) -> Path:
        return self.root / "rootfs"

    @property
    def kernel(self) -> Path:
        return self.root / "vmlinuz"

    @property
    def initrd(self) -> Path:
        return self.root / "initrd"

    @property
    def qcow2(self) -> Path:
        return self.root / "base.qcow2"

    @property
    def cmdline(self) -> str:
        return (self.root / "cmdline").read_text().strip()

    @property
    def ssh_key(self) -> Path:
        return self.root / "id_ed25519"


def ensure(cache_dir: str | None = None) -> tuple[BaseImage, float]:
    """Build the base image if the cache lacks it; return it and the seconds spent."""
    t0 = time.monotonic()
    args = ["bash", str(SCRIPT)] + ([cache_dir] if cache_dir else [])
    res = subprocess.run(args, capture_output=True, text=True, check=False, env=dict(os.environ))
    if res.returncode != 0:
        raise RuntimeError("base image build failed: %s" % (res.stderr.strip()[-2000:]))
    return BaseImage(Path(res.stdout.strip().splitlines()[-1])), time.monotonic() - t0
