"""Logging for every Squeezer process: JSON lines in production, text in development.

Context (request id, account id, task id, image id) travels in `extra` fields and is
rendered as fields. Anything that looks like a secret is redacted before it is written.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time

# Fields a record may carry through `extra=`, rendered in this order.
CONTEXT_FIELDS = (
    "request_id",
    "method",
    "route",
    "status",
    "duration_ms",
    "account_id",
    "task_id",
    "image_id",
)

_SECRET = re.compile(
    r"""(?ix)
    ("?(?:api_)?secret"?\s*[:=]\s*"?)[^"&\s,}]+   # secret=..., "secret": "..."
    | (authorization:\s*basic\s+)\S+               # an HTTP Basic header
    """
)


def redact(text: str) -> str:
    """`text` with secret values replaced by a marker."""
    return _SECRET.sub(lambda m: (m.group(1) or m.group(2)) + "[redacted]", text)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and context fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for name in CONTEXT_FIELDS:
            if hasattr(record, name):
                entry[name] = getattr(record, name)
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """A readable line: time, level, logger, message, then key=value context."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        context = " ".join(
            f"{name}={getattr(record, name)}"
            for name in CONTEXT_FIELDS
            if hasattr(record, name)
        )
        line = f"{stamp} {record.levelname:<7} {record.name}: {record.getMessage()}"
        if context:
            line += f" [{context}]"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return redact(line)


def configure(level: str = "info", fmt: str = "json") -> None:
    """Send every logger's records to stderr in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Werkzeug's own access log would duplicate our request line.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
