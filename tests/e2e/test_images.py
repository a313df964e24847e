"""Images end to end: gunicorn, a Celery worker, Redis and S3 over HTTP."""

from __future__ import annotations

import io
import urllib.parse
import zipfile

import pikepdf
import pytest
from PIL import Image

from tests.conftest import CORPUS

ONE_PER_FORMAT = {
    "jpeg": "images/jpeg/pillow_flower.jpg",
    "png": "images/png/pillow_test-card.png",
    "kodak png": "images/kodak/kodim23.png",
    "gif": "images/gif/pillow_hopper.gif",
    "webp": "images/webp/pillow_flower.webp",
    "pdf": "pdf/ocrmypdf_vector.pdf",
}


def _opens(data: bytes, fmt: str) -> tuple[int, int]:
    if fmt == "pdf":
        with pikepdf.open(io.BytesIO(data)) as pdf:
            box = pdf.pages[0].mediabox
            return round(float(box[2] - box[0])), round(float(box[3] - box[1]))
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.size


@pytest.mark.parametrize("case", ONE_PER_FORMAT, ids=list(ONE_PER_FORMAT))
@pytest.mark.parametrize("mode", ["lossy", "lossless"])
def test_upload_compresses_and_serves_both_files(api, case, mode):
    path = CORPUS / ONE_PER_FORMAT[case]
    original = path.read_bytes()
    answer = api.upload(
        original, f"C:\\Users\\me\\My Pictures\\{path.name}", {"compression_type": mode}
    )
    assert answer.status == 201, answer.body
    record = answer.json()
    fmt = case.split()[-1]
    assert record["status"] == "done", record
    assert record["type"] == fmt
    assert record["filename"] == path.name, "only the base name is kept"
    assert record["size_before"] == len(original)
    assert 0 < record["size_after"] <= len(original), "never larger"
    assert record["compression_type"] == mode
    assert "errCode" not in record

    optimized = api.request("GET", record["optimized_url"])
    assert optimized.status == 200
    assert len(optimized.body) == record["size_after"]
    assert (record["width"], record["height"]) == _opens(optimized.body, fmt)
    origin = api.request("GET", record["origin_url"])
    assert origin.body == original, "the original is kept byte for byte"
    assert origin.headers["Content-Type"].startswith(
        "application/pdf" if fmt == "pdf" else f"image/{fmt}"
    )


def test_unsupported_file_is_415_and_counts_nothing(api):
    answer = api.upload(b"just some text, not an image", "notes.txt")
    assert answer.status == 415, answer.body
    assert answer.json()["errCode"] == 415
    assert api.get("/v1/images").json()["total"] == 0
    assert api.get("/v1/accounts/mine").json()["quota_current"] == 0


def test_corrupt_image_is_400_and_keeps_the_original(api):
    broken = (CORPUS / "images/png/pillow_test-card.png").read_bytes()[:400]
    answer = api.upload(broken, "broken.png")
    assert answer.status == 400, answer.body
    listed = api.get("/v1/images").json()["items"]
    assert [item["status"] for item in listed] == ["failed"]
    assert listed[0]["error"]
    assert api.request("GET", listed[0]["optimized_url"]).body == broken


def test_missing_file_and_url_is_400(api):
    answer = api.upload(None)
    assert answer.status == 400
    assert "file" in answer.json()["errMessage"]


def test_list_get_delete_and_zip(api):
    data = (CORPUS / "images/jpeg/pillow_hopper.jpg").read_bytes()
    ids = [api.upload(data, f"hopper{n}.jpg").json()["id"] for n in range(3)]

    page = api.get("/v1/images", limit=2).json()
    assert page["total"] == 3
    assert [item["id"] for item in page["items"]] == ids[::-1][:2], "newest first"
    assert page["prev"] is None
    assert page["next"]["offset"] == 2
    assert "auth" not in page["next"]["link"]
    auth = urllib.parse.urlencode({"auth": api.auth})
    rest = api.request("GET", page["next"]["link"] + "&" + auth).json()
    assert [item["id"] for item in rest["items"]] == [ids[0]]

    archive = api.get(f"/v1/images/zip/optimized/{ids[0]},{ids[1]},999999")
    assert archive.status == 200
    with zipfile.ZipFile(io.BytesIO(archive.body)) as zipped:
        assert sorted(zipped.namelist()) == ["hopper0.jpg", "hopper1.jpg"]
        assert zipped.testzip() is None

    record = api.get(f"/v1/images/{ids[0]}").json()
    assert api.delete(f"/v1/images/{ids[0]}").status == 204
    assert api.get(f"/v1/images/{ids[0]}").status == 404
    assert api.request("GET", record["optimized_url"]).status == 404
    assert api.delete("/v1/images/all").status == 204
    assert api.get("/v1/images").json()["total"] == 0


def test_other_accounts_images_are_404(api, live_api, e2e_stores):
    from storage.accounts import Accounts
    from tests.e2e.client import Client

    data = (CORPUS / "images/jpeg/pillow_hopper.jpg").read_bytes()
    image_id = api.upload(data, "mine.jpg").json()["id"]
    other = Accounts(e2e_stores.redis).create(title="other")
    stranger = Client(live_api, other.api_key, other.api_secret)
    assert stranger.get(f"/v1/images/{image_id}").status == 404
    assert stranger.delete(f"/v1/images/{image_id}").status == 404
    assert stranger.get(f"/v1/images/zip/original/{image_id}").status == 404
    assert api.get(f"/v1/images/{image_id}").status == 200


def test_consumption_counts_finished_files(api):
    data = (CORPUS / "images/png/btop_icon.png").read_bytes()
    record = api.upload(data, "icon.png").json()
    mine = api.get("/v1/accounts/mine").json()
    assert mine["quota_current"] == len(data)
    today = api.get("/v1/accounts/mine/consumption").json()["consumption"]["last_days"][
        -1
    ]
    assert today["files_count"] == 1
    assert today["total_size_before"] == len(data)
    assert today["total_size_after"] == record["size_after"]


def test_params_nested_with_url_shape_is_read(api):
    data = (CORPUS / "images/jpeg/pillow_hopper.jpg").read_bytes()
    nested = {"params": {"compression_type": "lossless"}}
    answer = api.upload(data, "h.jpg", nested)
    assert answer.json()["compression_type"] == "lossless"


def test_trailing_slash_on_upload(api):
    data = (CORPUS / "images/jpeg/pillow_hopper.jpg").read_bytes()
    from tests.e2e.client import multipart

    body, content_type = multipart({"auth": api.auth, "params": "[]"}, data, "h.jpg")
    answer = api.request("POST", "/v1/images/", body, {"Content-Type": content_type})
    assert answer.status == 201, answer.body


def test_params_must_be_valid(api):
    data = (CORPUS / "images/jpeg/pillow_hopper.jpg").read_bytes()
    for params in (
        {"compression_type": "extreme"},
        {"convert": "bmp"},
        {"resize": {"width": -1}},
    ):
        answer = api.upload(data, "h.jpg", params)
        assert answer.status == 400, (params, answer.body)
    assert api.get("/v1/images").json()["total"] == 0, "nothing was stored"
