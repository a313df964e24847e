"""What must hold when things go wrong or happen at once: a worker killed mid-job,
concurrent uploads against a quota, the purge run twice at once, repeated files."""

from __future__ import annotations

import base64
import os
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest
from celery.exceptions import TimeLimitExceeded

from storage.accounts import Accounts
from storage.objects import ObjectNotFound
from storage.settings import Settings
from storage.usage import Usage
from tests.conftest import CORPUS
from tests.e2e.client import Client, multipart
from tests.workers.local_http import answer, local_server
from workers.app import create_celery
from workers.compress import COMPRESS, MAX_ATTEMPTS
from workers.purge import purge_expired

PHOTO = CORPUS / "images/jpeg/pillow_flower.jpg"


@contextmanager
def frozen(process):
    """Stop a process group with SIGSTOP for the duration, then let it go on."""
    os.killpg(process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.killpg(process.pid, signal.SIGCONT)


def _wait_for_status(stores, image_id: int, status: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while (record := stores.images.get(image_id)) is None or record.status != status:
        assert time.monotonic() < deadline, f"image {image_id} never became {status}"
        time.sleep(0.05)


def _wait_for_attempt(stores, image_id: int, attempt: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        record = stores.images.get(image_id)
        if record.status == "processing" and record.attempts == attempt:
            return
        assert time.monotonic() < deadline, f"image {image_id} never started {attempt}"
        time.sleep(0.05)


def _upload_in_background(api, answers: list) -> threading.Thread:
    upload = threading.Thread(
        target=lambda: answers.append(api.upload(PHOTO.read_bytes(), PHOTO.name))
    )
    upload.start()
    return upload


def _latest_image_id(stores, account_id: int, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while not (ids := stores.images.all_ids(account_id)):
        assert time.monotonic() < deadline, "no record was created"
        time.sleep(0.05)
    return ids[-1]


def test_a_job_survives_its_worker_being_killed(
    api, account, worker, moto_server, e2e_stores
):
    answers = []
    with frozen(worker.process):
        upload = threading.Thread(
            target=lambda: answers.append(api.upload(PHOTO.read_bytes(), PHOTO.name))
        )
        upload.start()
        image_id = _latest_image_id(e2e_stores, account.id)
    # The worker takes the job while S3 is frozen, and hangs reading the original.
    with frozen(moto_server.process):
        _wait_for_status(e2e_stores, image_id, "processing")
        worker.kill()
    worker.start()
    upload.join(timeout=120)
    assert answers, "the synchronous upload never answered"
    assert answers[0].status == 201, answers[0].body
    assert answers[0].json()["status"] == "done"
    record = e2e_stores.images.get(image_id)
    assert record.status == "done"
    assert e2e_stores.objects.size(record.optimized_key) == record.size_after


def test_a_file_that_keeps_killing_its_worker_fails_and_keeps_its_original(
    api, account, worker, moto_server, e2e_stores
):
    answers = []
    with frozen(worker.process):
        upload = _upload_in_background(api, answers)
        image_id = _latest_image_id(e2e_stores, account.id)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        with frozen(moto_server.process):
            _wait_for_attempt(e2e_stores, image_id, attempt)
            worker.kill()
        worker.start()
    upload.join(timeout=120)
    assert answers, "the synchronous upload never answered"
    assert answers[0].status == 400, answers[0].body
    assert "stopped its worker 3 times" in answers[0].json()["errMessage"]
    record = api.get(f"/v1/images/{image_id}").json()
    assert record["status"] == "failed"
    original = api.request("GET", record["origin_url"])
    assert original.status == 200
    assert original.body == PHOTO.read_bytes()


def test_a_job_cut_off_by_the_hard_time_limit_fails_its_record(
    api, account, worker, e2e_env, e2e_stores
):
    task = create_celery(Settings.from_env(e2e_env)).tasks[COMPRESS]
    answers = []
    with frozen(worker.process):
        upload = _upload_in_background(api, answers)
        image_id = _latest_image_id(e2e_stores, account.id)
        # What Celery calls in the worker's main process once it has killed
        # the pool process that ran past the hard limit.
        task.on_failure(TimeLimitExceeded(61.0), "job", (image_id,), {}, None)
    upload.join(timeout=60)
    assert answers[0].status == 400, answers[0].body
    assert answers[0].json()["errMessage"] == "Compression took too long."
    time.sleep(1.0)  # the worker, unfrozen, takes the job and leaves it alone
    record = e2e_stores.images.get(image_id)
    assert (record.status, record.attempts) == ("failed", 0)
    [(_, today)] = Usage(e2e_stores.redis).last_days(account)[-1:]
    assert today.files == 1


def test_concurrent_uploads_cannot_overshoot_a_quota(live_api, e2e_stores):
    size = PHOTO.stat().st_size
    account = Accounts(e2e_stores.redis).create(
        title="quota", monthly_quota=3 * size + 10
    )
    client = Client(live_api, account.api_key, account.api_secret)
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(
            pool.map(lambda n: client.upload(PHOTO.read_bytes(), f"{n}.jpg"), range(8))
        )
    statuses = sorted(answer.status for answer in answers)
    assert statuses == [201] * 3 + [403] * 5, statuses
    assert all(a.json()["errCode"] == 403 for a in answers if a.status == 403)
    assert client.get("/v1/accounts/mine").json()["quota_current"] == 3 * size
    assert client.get("/v1/images").json()["total"] == 3


def test_a_sub_account_counts_against_its_parent(live_api, e2e_stores):
    size = PHOTO.stat().st_size
    accounts = Accounts(e2e_stores.redis)
    parent = accounts.create(title="parent", monthly_quota=size + 10)
    sub = accounts.create(title="sub", parent=parent, monthly_quota=0)
    client = Client(live_api, sub.api_key, sub.api_secret)
    assert client.upload(PHOTO.read_bytes(), "a.jpg").status == 201
    refused = client.upload(PHOTO.read_bytes(), "b.jpg")
    assert refused.status == 403, "the parent's quota is exhausted"
    parent_client = Client(live_api, parent.api_key, parent.api_secret)
    assert parent_client.get("/v1/accounts/mine").json()["quota_current"] == size
    assert parent_client.get("/v1/images").json()["total"] == 0, "a parent sees its own"


def test_a_file_over_the_account_limit_is_413(live_api, e2e_stores):
    accounts = Accounts(e2e_stores.redis)
    small = accounts.create(title="small", file_max_size=10_000)
    client = Client(live_api, small.api_key, small.api_secret)
    answer = client.upload(PHOTO.read_bytes(), "big.jpg")
    assert answer.status == 413, answer.body
    assert client.get("/v1/accounts/mine").json()["quota_current"] == 0


def test_purge_removes_expired_files_and_is_safe_to_run_twice(api, e2e_stores):
    record = api.upload(PHOTO.read_bytes(), PHOTO.name).json()
    stored = e2e_stores.images.get(record["id"])
    later = time.time() + 31 * 86_400
    expired = len(e2e_stores.images.expired(later, 100_000))
    assert expired >= 1
    with ThreadPoolExecutor(max_workers=2) as pool:
        removed = list(pool.map(lambda _: purge_expired(e2e_stores, later), range(2)))
    assert sum(removed) == expired, "each record is removed once, by one of the two"
    assert purge_expired(e2e_stores, later) == 0
    assert e2e_stores.images.get(record["id"]) is None
    for key in (stored.original_key, stored.optimized_key):
        with pytest.raises(ObjectNotFound):
            e2e_stores.objects.size(key)
    assert api.request("GET", record["origin_url"]).status == 404
    assert api.get("/v1/images").json()["total"] == 0


def test_purge_keeps_what_has_not_expired(api, e2e_stores):
    record = api.upload(PHOTO.read_bytes(), PHOTO.name).json()
    assert purge_expired(e2e_stores, time.time() + 29 * 86_400) == 0
    assert api.get(f"/v1/images/{record['id']}").status == 200


def test_the_same_file_is_compressed_once_per_customer(
    api, account, worker, live_api, e2e_stores
):
    data = PHOTO.read_bytes()
    first = api.upload(data, "first.jpg").json()
    with frozen(worker.process):
        # No worker can run: only a reused result can answer at once.
        again = api.upload(data, "again.jpg")
        assert again.status == 201, again.body
        second = again.json()
        assert second["status"] == "done"
        assert second["size_after"] == first["size_after"]
        assert second["id"] != first["id"]

        stranger = Accounts(e2e_stores.redis).create(title="stranger")
        other = Client(live_api, stranger.api_key, stranger.api_secret)
        answers = []
        thread = threading.Thread(
            target=lambda: answers.append(other.upload(data, "x.jpg"))
        )
        thread.start()
        image_id = _latest_image_id(e2e_stores, stranger.id)
        time.sleep(0.5)
        assert e2e_stores.images.get(image_id).status == "queued", (
            "no reuse across customers"
        )
    thread.join(timeout=60)
    assert answers[0].status == 201

    mine = api.get("/v1/accounts/mine").json()
    assert mine["quota_current"] == 2 * len(data), "a reused upload still counts"
    # The reused copy is the second record's own: it outlives the first one.
    assert api.delete(f"/v1/images/{first['id']}").status == 204
    assert api.request("GET", second["optimized_url"]).status == 200


def test_only_one_beat_schedules_at_a_time(e2e_env, tmp_path):
    from tests.e2e.conftest import Process

    def beat(name: str) -> Process:
        command = [
            sys.executable, "-m", "celery", "-A", "workers.main", "beat",
            "--loglevel", "info", "--schedule", str(tmp_path / f"{name}.db"),
        ]  # fmt: skip
        return Process(command, e2e_env, tmp_path / f"{name}.log")

    first, second = beat("first"), beat("second")
    first.start()
    _wait_for_log(first, "holding the scheduler lock")
    second.start()
    _wait_for_log(second, "standing by")
    assert "holding the scheduler lock" not in second.log.read_text()
    first.stop()
    _wait_for_log(second, "holding the scheduler lock")
    second.stop()


def _wait_for_log(process, text: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while text not in process.log.read_text(errors="replace"):
        assert process.process.poll() is None, process.tail()
        assert time.monotonic() < deadline, f"never logged {text!r}: {process.tail()}"
        time.sleep(0.1)


def test_a_pending_download_waits_for_the_optimized_copy(api, worker):
    downloads = []
    with local_server() as hook:
        hook.routes["/hook"] = answer(204)
        with frozen(worker.process):
            queued = api.upload(
                PHOTO.read_bytes(), PHOTO.name, {"callback_url": hook.url("/hook")}
            )
            assert queued.status == 202, queued.body
            record = queued.json()
            assert record["status"] == "queued"
            fetch = threading.Thread(
                target=lambda: downloads.append(
                    api.request("GET", record["optimized_url"])
                )
            )
            fetch.start()
            time.sleep(1.0)
            assert fetch.is_alive(), "the download must wait while the job is pending"
        fetch.join(timeout=60)
    done = api.get(f"/v1/images/{record['id']}").json()
    assert done["status"] == "done"
    assert downloads[0].status == 200
    assert len(downloads[0].body) == done["size_after"]


def test_basic_auth_upload_is_refused_before_the_body_when_quota_is_gone(
    live_api, e2e_stores
):
    account = Accounts(e2e_stores.redis).create(title="full", monthly_quota=100)
    Usage(e2e_stores.redis).reserve(account, None, 100)
    client = Client(live_api, account.api_key, account.api_secret)
    body, content_type = multipart({}, PHOTO.read_bytes(), PHOTO.name)
    token = base64.b64encode(f"{account.api_key}:{account.api_secret}".encode())
    answer = client.request(
        "POST",
        "/v1/images",
        body,
        {"Content-Type": content_type, "Authorization": "Basic " + token.decode()},
    )
    assert answer.status == 403, answer.body
