"""One suite that every object store passes: LocalStore in a temporary directory and
S3Store against a moto server over HTTP, plus the few facts only one of them has."""

from __future__ import annotations

import hashlib
import io
import os
import socket
import threading
import tracemalloc
from pathlib import Path

import pytest

from storage.objects import (
    LocalStore,
    ObjectNotFound,
    ObjectStore,
    S3Store,
    SizeMismatch,
    StorageUnavailable,
    open_store,
)
from storage.objects import s3 as s3_module
from tests.moto_server import MotoServer

MiB = 1 << 20
PART_SIZE = 5 * MiB  # the smallest part S3 accepts
LARGE_SIZE = 12 * PART_SIZE + 123


def s3_store(request: pytest.FixtureRequest, **options) -> S3Store:
    """An S3Store on a fresh moto bucket, with small parts so that tests go multipart
    with files of a few MiB."""
    options.setdefault("endpoint_url", request.getfixturevalue("moto_server").url)
    return S3Store(
        request.getfixturevalue("s3_bucket"),
        "objects",
        part_size=PART_SIZE,
        max_concurrency=2,
        session=request.getfixturevalue("boto_session"),
        **options,
    )


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "local":
        return LocalStore(tmp_path / "objects")
    return s3_store(request)


@pytest.fixture
def local_store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "objects")


@pytest.fixture
def s3(request: pytest.FixtureRequest) -> S3Store:
    return s3_store(request)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_random_file(path: Path, size: int) -> str:
    """Fill `path` with `size` random bytes a MiB at a time; return their sha256."""
    digest = hashlib.sha256()
    with path.open("wb") as out:
        for start in range(0, size, MiB):
            chunk = os.urandom(min(MiB, size - start))
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


class Pipe(io.RawIOBase):
    """A stream that cannot seek and hands out small pieces, like a socket, and
    fails with `error` once `fail_after` bytes have been read."""

    def __init__(
        self,
        data: bytes,
        fail_after: int | None = None,
        error: Exception | None = None,
    ) -> None:
        self._data = memoryview(data)
        self._position = 0
        self._fail_after = fail_after
        self._error = error

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._fail_after is not None and self._position >= self._fail_after:
            raise self._error
        piece = self._data[self._position : self._position + min(len(buffer), 65536)]
        buffer[: len(piece)] = piece
        self._position += len(piece)
        return len(piece)


ROUND_TRIPS = [
    pytest.param("empty.png", b"", id="empty"),
    pytest.param("photo.jpg", b"\xff\xd8" + bytes(range(256)) * 40, id="binary"),
    pytest.param("originals/2026/12/04/abc123", b"\x89PNG", id="nested-key"),
    pytest.param("name with spaces & ünïcode.webp", b"RIFF", id="unusual-name"),
    pytest.param("big.pdf", os.urandom(PART_SIZE + 1), id="one-byte-past-a-part"),
]


@pytest.mark.parametrize(("key", "data"), ROUND_TRIPS)
def test_put_then_read_open_and_size(store: ObjectStore, key: str, data: bytes):
    written = store.put(key, io.BytesIO(data), len(data), "image/png")

    assert written == len(data), f"put should report {len(data)} bytes stored"
    assert store.read(key) == data, "read should give back the bytes put"
    with store.open(key) as stream:
        assert stream.read() == data, "open should stream back the bytes put"
    assert store.size(key) == len(data), f"size should be {len(data)}"
    assert store.exists(key), "the object should exist after put"


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"optimized", id="small"),
        pytest.param(os.urandom(PART_SIZE + 7), id="past-the-threshold"),
    ],
)
def test_write_stores_bytes(store: ObjectStore, data: bytes):
    assert store.write("optimized/a", data, "image/webp") == len(data)

    assert store.read("optimized/a") == data, "read should give back what write got"


@pytest.mark.parametrize("size", [None, 300_000], ids=["undeclared", "declared"])
def test_put_reads_a_stream_that_cannot_seek(store: ObjectStore, size: int | None):
    data = os.urandom(300_000)

    assert store.put("piped", Pipe(data), size) == len(data)

    assert store.read("piped") == data, "a piecewise stream should arrive whole"


def test_put_replaces_an_existing_object(store: ObjectStore):
    store.write("key", b"first version")
    store.write("key", b"second")

    assert store.read("key") == b"second", "the second put should replace the first"
    assert store.size("key") == len(b"second"), "size should be the new length"


def test_large_upload_streams_without_holding_the_file(
    store: ObjectStore, tmp_path: Path
):
    source = tmp_path / "large.bin"
    expected = write_random_file(source, LARGE_SIZE)

    with source.open("rb") as stream:
        tracemalloc.start()
        try:
            written = store.put("large", stream, LARGE_SIZE)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    assert written == LARGE_SIZE, f"put should report {LARGE_SIZE} bytes"
    assert peak < LARGE_SIZE / 2, (
        f"uploading {LARGE_SIZE} bytes should hold far less in memory, "
        f"but the peak was {peak}"
    )
    digest = hashlib.sha256()
    with store.open("large") as stream:
        while chunk := stream.read(MiB):
            digest.update(chunk)
    assert digest.hexdigest() == expected, "the streamed download should match"


def test_readers_see_a_whole_version_while_it_is_replaced(store: ObjectStore):
    versions = [bytes([number]) * (PART_SIZE + 1) for number in range(2)]
    store.write("busy", versions[0])
    seen: list[bytes] = []

    def keep_replacing() -> None:
        for turn in range(6):
            store.write("busy", versions[turn % 2])

    writer = threading.Thread(target=keep_replacing)
    writer.start()
    while writer.is_alive() or not seen:
        seen.append(store.read("busy"))
    writer.join()

    torn = [len(data) for data in seen if data not in versions]
    assert torn == [], f"every read should be one whole version, got sizes {torn}"


def drain(stream) -> None:
    while stream.read(MiB):
        pass


def test_s3_download_cut_mid_stream_raises_unavailable(tmp_path: Path, boto_session):
    server = MotoServer(tmp_path / "moto.log")
    server.start()
    try:
        store = S3Store("cut", endpoint_url=server.url, session=boto_session)
        store.client.create_bucket(Bucket="cut")
        store.write("large", os.urandom(24 * MiB))
        with store.open("large") as stream:
            stream.read(MiB)
            server.kill()

            with pytest.raises(StorageUnavailable):
                drain(stream)
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("size", "parts"),
    [
        pytest.param(PART_SIZE - 1, 0, id="under-the-threshold-in-one-request"),
        pytest.param(2 * PART_SIZE + 10, 3, id="past-the-threshold-in-parts"),
    ],
)
def test_s3_upload_goes_multipart_past_the_threshold(
    s3: S3Store, s3_client, tmp_path: Path, size: int, parts: int
):
    source = tmp_path / "upload.bin"
    write_random_file(source, size)

    with source.open("rb") as stream:
        s3.put("upload", stream, size)

    etag = s3_client.head_object(Bucket=s3.bucket, Key="objects/upload")["ETag"]
    # S3 tags a multipart object "<digest>-<number of parts>", a single PUT "<md5>".
    counted = int(etag.strip('"').partition("-")[2] or 0)
    assert counted == parts, f"expected {parts} parts (0: single PUT), ETag {etag}"


@pytest.mark.parametrize(
    "operation",
    [
        pytest.param(lambda store: store.read("missing"), id="read"),
        pytest.param(lambda store: store.open("missing"), id="open"),
        pytest.param(lambda store: store.size("missing"), id="size"),
        pytest.param(lambda store: store.read("no/such/folder/key"), id="read-nested"),
    ],
)
def test_missing_object_raises_not_found(store: ObjectStore, operation):
    store.write("present", b"x")

    with pytest.raises(ObjectNotFound):
        operation(store)


def test_exists_is_false_for_a_missing_object(store: ObjectStore):
    store.write("present", b"x")

    assert not store.exists("missing"), "exists should be False for a missing key"


def test_delete_is_idempotent(store: ObjectStore):
    store.write("doomed", b"x")

    store.delete("doomed")
    store.delete("doomed")
    store.delete("never/stored")

    assert not store.exists("doomed"), "a deleted object should be gone"
    with pytest.raises(ObjectNotFound):
        store.read("doomed")


def test_delete_many_removes_those_named_and_no_others(store: ObjectStore):
    for key in ("a", "b", "dir/c", "kept"):
        store.write(key, key.encode())

    store.delete_many(["a", "dir/c", "never-stored", "a"])
    store.delete_many([])

    left = [key for key in ("a", "b", "dir/c", "kept") if store.exists(key)]
    assert left == ["b", "kept"], f"only b and kept should remain, not {left}"


def test_s3_delete_many_sends_batches(
    s3: S3Store, s3_client, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(s3_module, "DELETE_BATCH", 2)
    keys = [f"k{number}" for number in range(5)]
    for key in keys:
        s3.write(key, b"x")

    s3.delete_many(keys)

    listed = s3_client.list_objects_v2(Bucket=s3.bucket).get("Contents", [])
    assert listed == [], f"every batch should be deleted, left {listed}"


@pytest.mark.parametrize(
    ("declared", "data"),
    [
        pytest.param(10, b"short", id="ends-short"),
        pytest.param(3, b"too long", id="runs-past"),
        pytest.param(
            PART_SIZE * 2, os.urandom(PART_SIZE + 1), id="ends-short-in-parts"
        ),
        pytest.param(PART_SIZE + 1, os.urandom(PART_SIZE * 2), id="runs-past-in-parts"),
    ],
)
def test_put_of_the_wrong_length_stores_nothing(
    store: ObjectStore, declared: int, data: bytes
):
    with pytest.raises(SizeMismatch):
        store.put("sized", io.BytesIO(data), declared)

    assert not store.exists("sized"), "nothing should be stored after a mismatch"


@pytest.mark.parametrize(
    "fail_after",
    [
        pytest.param(1000, id="in-one-request"),
        pytest.param(PART_SIZE + 1, id="in-parts"),
    ],
)
def test_failed_upload_keeps_the_previous_object(store: ObjectStore, fail_after: int):
    store.write("photo", b"previous")
    broken = Pipe(os.urandom(3 * PART_SIZE), fail_after, ConnectionResetError("gone"))

    with pytest.raises(ConnectionResetError):
        store.put("photo", broken)

    assert store.read("photo") == b"previous", "a failed put should change nothing"


def test_s3_failed_multipart_upload_is_aborted(s3: S3Store, s3_client):
    broken = Pipe(os.urandom(3 * PART_SIZE), PART_SIZE + 1, ConnectionResetError())

    with pytest.raises(ConnectionResetError):
        s3.put("photo", broken)

    pending = s3_client.list_multipart_uploads(Bucket=s3.bucket).get("Uploads", [])
    assert pending == [], f"the failed multipart upload should be aborted: {pending}"


def test_local_failed_write_leaves_no_temporary_file(local_store: LocalStore):
    local_store.write("dir/photo", b"previous")
    broken = Pipe(os.urandom(3 * MiB), MiB, ConnectionResetError("gone"))

    with pytest.raises(ConnectionResetError):
        local_store.put("dir/photo", broken)

    files = sorted(p.name for p in local_store.root.rglob("*") if p.is_file())
    assert files == ["photo"], f"only the previous object should remain: {files}"


UNSAFE_KEYS = [
    pytest.param("", id="empty"),
    pytest.param("/etc/escape", id="absolute"),
    pytest.param("../escape", id="parent"),
    pytest.param("a/../../escape", id="parent-inside"),
    pytest.param("a//escape", id="empty-segment"),
    pytest.param("a/./escape", id="dot-segment"),
    pytest.param("dir/", id="trailing-slash"),
    pytest.param("..\\escape", id="backslash"),
    pytest.param("nul\0escape", id="nul"),
    pytest.param("x" * 1025, id="too-long"),
]

KEY_OPERATIONS = [
    pytest.param(lambda store, key: store.put(key, io.BytesIO(b"x")), id="put"),
    pytest.param(lambda store, key: store.write(key, b"x"), id="write"),
    pytest.param(lambda store, key: store.read(key), id="read"),
    pytest.param(lambda store, key: store.open(key), id="open"),
    pytest.param(lambda store, key: store.size(key), id="size"),
    pytest.param(lambda store, key: store.exists(key), id="exists"),
    pytest.param(lambda store, key: store.delete(key), id="delete"),
    pytest.param(lambda store, key: store.delete_many(["ok", key]), id="delete_many"),
]


@pytest.mark.parametrize("operation", KEY_OPERATIONS)
@pytest.mark.parametrize("key", UNSAFE_KEYS)
def test_unsafe_key_is_rejected(local_store: LocalStore, key: str, operation):
    with pytest.raises(ValueError, match="object key"):
        operation(local_store, key)


@pytest.mark.parametrize("key", UNSAFE_KEYS)
def test_unsafe_key_is_rejected_by_every_store(store: ObjectStore, key: str):
    with pytest.raises(ValueError, match="object key"):
        store.write(key, b"x")


@pytest.mark.parametrize(
    "key",
    ["../escape", "a/../../escape", "/tmp/escape"],
    ids=["up", "up-inside", "abs"],
)
def test_local_key_never_writes_outside_the_root(tmp_path: Path, key: str):
    store = LocalStore(tmp_path / "deep" / "objects")

    with pytest.raises(ValueError, match="object key"):
        store.write(key, b"x")

    written = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert written == [], f"no file should be written anywhere, found {written}"


@pytest.fixture(params=["local-root-is-a-file", "s3-closed-port"])
def unreachable_store(
    request: pytest.FixtureRequest, tmp_path: Path, boto_session
) -> ObjectStore:
    if request.param == "local-root-is-a-file":
        (tmp_path / "not-a-directory").write_bytes(b"")
        return LocalStore(tmp_path / "not-a-directory" / "objects")
    return S3Store(
        "bucket",
        endpoint_url=f"http://127.0.0.1:{closed_port()}",
        connect_timeout=0.5,
        read_timeout=0.5,
        attempts=1,
        session=boto_session,
    )


UNAVAILABLE_OPERATIONS = [
    pytest.param(lambda store: store.check(), id="check"),
    pytest.param(lambda store: store.put("k", io.BytesIO(b"x")), id="put"),
    pytest.param(lambda store: store.write("k", b"x"), id="write"),
    pytest.param(lambda store: store.read("k"), id="read"),
    pytest.param(lambda store: store.open("k"), id="open"),
    pytest.param(lambda store: store.size("k"), id="size"),
    pytest.param(lambda store: store.exists("k"), id="exists"),
    pytest.param(lambda store: store.delete("k"), id="delete"),
    pytest.param(lambda store: store.delete_many(["k"]), id="delete_many"),
]


@pytest.mark.parametrize("operation", UNAVAILABLE_OPERATIONS)
def test_unreachable_store_raises_unavailable(
    unreachable_store: ObjectStore, operation
):
    with pytest.raises(StorageUnavailable):
        operation(unreachable_store)


@pytest.mark.parametrize(
    "operation",
    [
        pytest.param(lambda store: store.check(), id="check"),
        pytest.param(lambda store: store.write("k", b"x"), id="write"),
        pytest.param(lambda store: store.read("k"), id="read"),
    ],
)
def test_s3_missing_bucket_raises_unavailable(
    request: pytest.FixtureRequest, boto_session, operation
):
    store = S3Store(
        "no-such-bucket",
        endpoint_url=request.getfixturevalue("moto_server").url,
        session=boto_session,
    )

    with pytest.raises(StorageUnavailable):
        operation(store)


def test_check_passes_on_a_working_store(store: ObjectStore):
    assert store.check() is None, "check should return quietly on a working store"


def test_s3_keys_live_under_the_prefix(s3: S3Store, s3_client):
    s3.write("originals/abc", b"x", "image/webp")

    head = s3_client.head_object(Bucket=s3.bucket, Key="objects/originals/abc")
    assert head["ContentType"] == "image/webp", "the content type should be kept"


@pytest.mark.parametrize(
    ("url", "kind", "where"),
    [
        pytest.param("s3://media", S3Store, ("media", ""), id="s3-bucket"),
        pytest.param("s3://media/sq/", S3Store, ("media", "sq"), id="s3-prefix"),
        pytest.param("s3://media/a/b", S3Store, ("media", "a/b"), id="s3-deep-prefix"),
        pytest.param("file:///srv/objects", LocalStore, "/srv/objects", id="file-url"),
        pytest.param("file://localhost/srv", LocalStore, "/srv", id="file-localhost"),
        pytest.param("/srv/objects", LocalStore, "/srv/objects", id="absolute-path"),
        pytest.param("data/objects", LocalStore, "data/objects", id="relative-path"),
    ],
)
def test_open_store_picks_the_store_from_the_url(url: str, kind: type, where):
    store = open_store(url, endpoint_url=None, region=None)

    assert type(store) is kind, f"{url} should open a {kind.__name__}"
    found = (
        (store.bucket, store.prefix) if isinstance(store, S3Store) else str(store.root)
    )
    assert found == where, f"{url} should point at {where}, not {found}"


def test_open_store_passes_s3_options(boto_session):
    store = open_store(
        "s3://media",
        endpoint_url="http://127.0.0.1:9000",
        region="eu-west-3",
        part_size=16 * MiB,
        session=boto_session,
    )

    meta = store.client.meta
    assert meta.endpoint_url == "http://127.0.0.1:9000", "endpoint_url should pass"
    assert meta.region_name == "eu-west-3", "region should pass"
    assert store.transfer.multipart_chunksize == 16 * MiB, "part_size should pass"


@pytest.mark.parametrize(
    ("url", "options"),
    [
        pytest.param("s3://", {}, id="s3-without-bucket"),
        pytest.param("http://example.com/objects", {}, id="http"),
        pytest.param("file://server/share", {}, id="remote-file-url"),
        pytest.param("", {}, id="empty"),
        pytest.param("/srv/objects", {"endpoint_url": "http://x"}, id="local-with-s3"),
        pytest.param("s3://media/../up", {}, id="s3-unsafe-prefix"),
    ],
)
def test_open_store_rejects_bad_urls(url: str, options: dict):
    with pytest.raises(ValueError, match=r"s3|URL|path|key"):
        open_store(url, **options)
