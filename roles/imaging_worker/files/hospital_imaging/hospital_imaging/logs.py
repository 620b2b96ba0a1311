"""Structured logs: one JSON object per line on stderr. Never pass DICOM header values here."""

from __future__ import annotations

import json
import logging
import sys
import time

LOGGER = "hospital_imaging"


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON line: ts, level, event, then the record's ``fields``."""

    def format(self, record: logging.LogRecord) -> str:
        body = {"ts": round(record.created, 3), "level": record.levelname.lower(), "event": record.getMessage()}
        body.update(getattr(record, "fields", {}) or {})
        if record.exc_info and record.levelno >= logging.ERROR:
            body["exception"] = record.exc_info[0].__name__ if record.exc_info[0] else None
        return json.dumps(body, default=str, sort_keys=False)


def setup(level: str = "info", stream=None) -> logging.Logger:
    """Configure the package logger for JSON output; silence third-party loggers (pydicom)."""
    logger = logging.getLogger(LOGGER)
    logger.handlers[:] = []
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = False
    logging.getLogger("pydicom").setLevel(logging.CRITICAL)
    return logger


def event(name: str, level: int = logging.INFO, **fields) -> None:
    """Log ``name`` with structured ``fields``."""
    logging.getLogger(LOGGER).log(level, name, extra={"fields": fields})


def now() -> float:
    """Wall clock for log fields."""
    return round(time.time(), 3)
