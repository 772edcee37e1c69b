"""One logging setup for ``fedsync serve`` and the CLI: timestamped lines on stderr, or JSON.

``FEDSYNC_LOG_FORMAT=json`` gives one JSON object per line (python-json-logger):
``time`` (UTC, RFC 3339), ``level``, ``logger``, ``message``, and the fields a
line carries besides (``peer``, ``reason``, ``breaker``, ...), for a log
collector. Otherwise a line is ``<time> <LEVEL> <logger>: <message>``.
uvicorn's own loggers (access lines included) go through the same handler.
"""

from __future__ import annotations

import logging
import os
import time

from pythonjsonlogger.json import JsonFormatter

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _UtcText(logging.Formatter):
    converter = time.gmtime

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 - logging's
        return time.strftime("%Y-%m-%dT%H:%M:%S", self.converter(record.created)) + f".{int(record.msecs):03d}Z"


class _UtcJson(JsonFormatter):
    converter = time.gmtime

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 - logging's
        return _UtcText().formatTime(record)


def configure_logging(level: str = "info", log_format: str | None = None, *, access_log: bool = True) -> None:
    """Send every logger's records (fedsync's and uvicorn's) to stderr in one format; without ``access_log``,
    none of uvicorn's request lines (as uvicorn's own ``access_log=False`` does)."""
    log_format = (log_format or os.environ.get("FEDSYNC_LOG_FORMAT") or "text").lower()
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(_UtcJson("%(asctime)s %(levelname)s %(name)s %(message)s",
                                      rename_fields={"asctime": "time", "levelname": "level", "name": "logger"}))
    else:
        handler.setFormatter(_UtcText(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = access_log or name != "uvicorn.access"
