"""Peer results and scores kept on disk, so that a re-run computes only what changed.

A tool's output is keyed by the tool, its version and the input's hash; a score or a
check by what was measured, the input's hash and the output's hash.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _key(*parts: str) -> str:
    return digest("\0".join(parts).encode())


class ResultCache:
    """JSON records and tool outputs under one folder; `fresh` ignores old ones."""

    def __init__(self, root: Path, fresh: bool = False) -> None:
        self.root = root
        self.fresh = fresh

    def _path(self, kind: str, key: str, suffix: str) -> Path:
        return self.root / kind / key[:2] / f"{key}{suffix}"

    def load_run(self, label: str, version: str, source: str) -> dict[str, Any] | None:
        """A tool's earlier record for this input, with its output under "data"."""
        if self.fresh:
            return None
        key = _key(label, version, source)
        record_path = self._path("runs", key, ".json")
        if not record_path.exists():
            return None
        record = json.loads(record_path.read_text())
        if record["ok"]:
            output = self._path("runs", key, ".out")
            if not output.exists():
                return None
            record["data"] = output.read_bytes()
        return record

    def store_run(
        self, label: str, version: str, source: str, record: dict[str, Any]
    ) -> None:
        key = _key(label, version, source)
        record_path = self._path("runs", key, ".json")
        record_path.parent.mkdir(parents=True, exist_ok=True)
        data = record.get("data")
        if data is not None:
            self._path("runs", key, ".out").write_bytes(data)
        kept = {name: value for name, value in record.items() if name != "data"}
        record_path.write_text(json.dumps(kept))

    def load_measure(self, measure: str, source: str, output: str) -> Any:
        """An earlier score or check of this pair, or None."""
        if self.fresh:
            return None
        path = self._path("measures", _key(measure, source, output), ".json")
        return json.loads(path.read_text()) if path.exists() else None

    def store_measure(self, measure: str, source: str, output: str, value: Any) -> None:
        path = self._path("measures", _key(measure, source, output), ".json")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))
