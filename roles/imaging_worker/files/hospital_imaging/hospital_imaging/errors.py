"""Errors with a stable, PHI-free reason code (used in failed/ reason files and metric labels)."""

from __future__ import annotations

# Reason codes are a closed set: they become Prometheus label values.
REASON_CODES = (
    "empty",        # zero-byte input
    "corrupt",      # decoder rejected the bytes
    "truncated",    # file ends before its declared pixel data
    "unsupported",  # format, transfer syntax or layout we do not handle
    "too_small",    # below the pipeline's minimum size
    "pipeline",     # invalid pipeline definition
    "internal",     # unexpected exception (a bug): reported with its type
)


class ImagingError(Exception):
    """Base class: ``code`` is one of REASON_CODES, ``reason`` a human readable sentence."""

    code = "internal"

    def __init__(self, reason: str, code: str | None = None):
        super().__init__(reason)
        self.reason = reason
        if code is not None:
            self.code = code
        if self.code not in REASON_CODES:
            raise ValueError("unknown reason code %r" % self.code)


class InputError(ImagingError):
    """The input image cannot be processed (bad file, unsupported format, too small...)."""

    code = "corrupt"


class PipelineError(ImagingError):
    """The pipeline definition is invalid."""

    code = "pipeline"


class SourceError(Exception):
    """A work source cannot be used (missing directory, unreachable cluster, missing binding)."""


def redact(text: str, secrets) -> str:
    """Replace every occurrence of the given strings (PHI values read from a header) in ``text``."""
    for value in sorted({s for s in secrets if s and len(s) >= 2}, key=len, reverse=True):
        text = text.replace(value, "[redacted]")
    return text
