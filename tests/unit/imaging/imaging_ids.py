"""Fixed opaque job ids for tests that name their inputs (the worker never takes a name as a job id)."""

import hashlib
import os

EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".dcm")


def jid(name):
    """``name``'s opaque stand-in: its stem in hex (names up to 16 bytes keep their order) or an MD5,
    padded to 32 hex digits, plus its image extension."""
    stem, ext = os.path.splitext(name)
    if ext not in EXTENSIONS:
        stem, ext = name, ""
    raw = stem.encode()
    digits = raw.hex() if len(raw) <= 16 else hashlib.md5(raw).hexdigest()
    return digits.ljust(32, "0") + ext
