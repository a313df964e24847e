"""`squeezer serve` starts every role, answers over HTTP, and leaves nothing behind."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from storage.embedded_redis import free_port

SQUEEZER = str(Path(sys.executable).with_name("squeezer"))


def _start(data_dir: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "STORAGE_URL")}
    with log.open("ab") as out:
        process = subprocess.Popen(
            [SQUEEZER, "serve", "--data-dir", str(data_dir), "--port", str(port),
             "--workers", "1"],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    deadline = time.monotonic() + 90
    while "Squeezer is running" not in log.read_text():
        assert process.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, "serve did not start in time"
        time.sleep(0.2)
    return process


def _stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGINT)
    return process.wait(timeout=90)


def _leftovers(data_dir: Path, password: str) -> list[str]:
    """Processes whose command line names the data dir or whose environment holds
    the private Redis password: whatever serve started and did not stop."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            environ = (proc / "environ").read_bytes()
        except OSError:
            continue
        if str(data_dir).encode() in cmdline or password.encode() in environ:
            found.append(cmdline.replace(b"\0", b" ").decode(errors="replace"))
    return found


def _get(url: str, key: str, secret: str) -> dict:
    auth = json.dumps({"key": key, "secret": secret})
    query = urllib.parse.urlencode({"auth": auth})
    with urllib.request.urlopen(f"{url}?{query}", timeout=10) as response:
        return json.loads(response.read())


def test_serve_runs_everything_and_stops_everything(tmp_path: Path):
    data_dir, port, log = tmp_path / "data", free_port(), tmp_path / "serve.log"
    process = _start(data_dir, port, log)
    try:
        text = log.read_text()
        key = re.search(r"key\s+([0-9a-f]{32})", text).group(1)
        secret = re.search(r"secret\s+([0-9a-f]{64})", text).group(1)
        base = f"http://127.0.0.1:{port}"
        assert _get(f"{base}/v1/accounts/mine", key, secret)["quota_allowed"] == 0
        assert "ready" in text, "the Celery worker started"
        assert "beat: Starting" in text, "the scheduler started"

        created = subprocess.run(
            [SQUEEZER, "accounts", "create", "--title", "Ops",
             "--data-dir", str(data_dir)],
            capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip
        ops = json.loads(created.stdout)
        assert _get(f"{base}/v1/accounts/mine", ops["api_key"], ops["api_secret"])
        assert secret not in created.stdout + created.stderr

        password = json.loads((data_dir / "serve.json").read_text())["redis_url"]
        password = password.split(":")[2].split("@")[0]
    finally:
        status = _stop(process)
    assert status == 0, log.read_text()[-3000:]
    assert _leftovers(data_dir, password) == []
    assert log.read_text().count(secret) == 1, "the secret is printed once, not logged"

    # A second start finds the same accounts: the private Redis kept its data.
    log = tmp_path / "serve-again.log"
    process = _start(data_dir, port, log)
    try:
        assert f"key {key}" in log.read_text()
        assert _get(f"http://127.0.0.1:{port}/v1/accounts/mine", key, secret)
    finally:
        assert _stop(process) == 0
