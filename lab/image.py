"""The cached Debian base of the test bed (built once per suite by base-image.sh, reused from its cache).

The suite is trixie (Debian 13) unless HC_DEBIAN_SUITE names another (bookworm: Debian 12).
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SCRIPT = Path(__file__).with_name("base-image.sh")
SUITES = ("trixie", "bookworm")


def default_suite() -> str:
    """The Debian suite of the test bed's hosts: HC_DEBIAN_SUITE, else trixie (Debian 13)."""
    suite = os.environ.get("HC_DEBIAN_SUITE") or SUITES[0]
    if suite not in SUITES:
        raise ValueError("HC_DEBIAN_SUITE=%s: the test bed builds %s" % (suite, " or ".join(SUITES)))
    return suite


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


def ensure(cache_dir: str | None = None, suite: str | None = None) -> tuple[BaseImage, float]:
    """Build the base image of `suite` (default: default_suite()) if the cache lacks it; return it and the
    seconds spent."""
    t0 = time.monotonic()
    suite = suite or default_suite()
    if suite not in SUITES:
        raise ValueError("unknown Debian suite %r: the test bed builds %s" % (suite, " or ".join(SUITES)))
    cache_dir = cache_dir or os.environ.get("HC_CACHE_DIR") or "/var/cache/hospital-cloud"
    args = ["bash", str(SCRIPT), cache_dir, suite]
    res = subprocess.run(args, capture_output=True, text=True, check=False, env=dict(os.environ))
    if res.returncode != 0:
        raise RuntimeError("base image build failed: %s" % (res.stderr.strip()[-2000:]))
    return BaseImage(Path(res.stdout.strip().splitlines()[-1])), time.monotonic() - t0
