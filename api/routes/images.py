"""The /v1/images routes: add, list, get, delete, download and zip."""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify, request, stream_with_context
from werkzeug.datastructures import MultiDict

from api import inputs, uploads
from api.auth import current_account
from api.multipart import Spooled, read_form
from api.remote import check_callback_url, fetch_upload
from api.services import services
from api.submit import check_quota_left, file_max_size, submit
from api.waiting import wait_finished
from api.zipstream import zip_records
from storage.accounts import Account
from storage.errors import (
    BadRequest,
    FileTooLarge,
    NotFound,
    Unauthorized,
    UnsupportedType,
)
from storage.images import DONE, MEDIA_TYPES, OPTIMIZED, ORIGINAL, ImageRecord
from workers import wire

blueprint = Blueprint("images", __name__)

DEFAULT_LIMIT, MAX_LIMIT = 30, 100
# Room for the multipart framing and the text fields around a file part.
FORM_SLACK = 64 * 1024
CHUNK = 256 * 1024


@blueprint.post("/images")
def add_image():
    """Compress a file sent as `file` or fetched from `url`; 201 once done."""
    svc = services()
    upload = _read_multipart()
    try:
        account = current_account()
        wanted = uploads.parse(inputs.params())
        if wanted.callback_url:
            check_callback_url(wanted.callback_url, svc.settings)
        if upload is None:
            if not wanted.url:
                raise BadRequest("Send the image as a `file` part or as a `url`.")
            check_quota_left(account, svc)
            upload = fetch_upload(wanted.url, file_max_size(account, svc), svc.settings)
        record = submit(svc, account, upload, wanted.options, wanted.callback_url)
    finally:
        if upload is not None:
            upload.close()
    if wanted.callback_url:
        return jsonify(wire.image(record, svc.settings)), 202
    finished = wait_finished(svc, record.id, svc.settings.sync_wait_timeout)
    record = finished or record
    if record.error_status in (400, 415):
        error_type = UnsupportedType if record.error_status == 415 else BadRequest
        raise error_type(record.error)
    status = 201 if record.finished else 202
    return jsonify(wire.image(record, svc.settings)), status


@blueprint.get("/images")
def list_images():
    """The caller's images, newest first, `offset` and `limit` from the query."""
    account = current_account()
    svc = services()
    offset = inputs.integer(request.args.get("offset"), "offset") or 0
    limit = inputs.integer(request.args.get("limit"), "limit", minimum=1)
    limit = min(limit or DEFAULT_LIMIT, MAX_LIMIT)
    total = svc.images.count(account.id)
    records = svc.images.page(account.id, offset, limit)
    return jsonify(
        items=[wire.image(r, svc.settings) for r in records],
        total=total,
        prev=_page(max(0, offset - limit), limit) if offset > 0 else None,
        next=_page(offset + limit, limit) if offset + limit < total else None,
    )


@blueprint.get("/images/<int:image_id>")
def get_image(image_id: int):
    """One of the caller's image records."""
    return jsonify(wire.image(_own(image_id), services().settings))


@blueprint.delete("/images/<int:image_id>")
def delete_image(image_id: int):
    """Delete a record and both of its files."""
    _delete([_own(image_id)])
    return "", 204


@blueprint.route("/images", methods=["DELETE"], endpoint="delete_all")
@blueprint.route("/images/all", methods=["DELETE"])
def delete_all_images():
    """Delete every image of the caller."""
    svc = services()
    account = current_account()
    _delete(svc.images.many(svc.images.all_ids(account.id)))
    return "", 204


@blueprint.get("/images/<which>/<token>/<path:name>")
def download(which: str, token: str, name: str):
    """A file by its token. The optimized copy waits for a pending job, and is the
    original when compression failed: a link that exists never answers an error."""
    svc = services()
    found = svc.images.by_token(token) if which in (ORIGINAL, OPTIMIZED) else None
    if found is None or found[1] != which:
        raise NotFound("No file at this link, or it has expired.")
    record = found[0]
    if which == OPTIMIZED and not record.finished:
        record = wait_finished(svc, record.id, svc.settings.sync_wait_timeout) or record
    key, fmt = record.original_key, record.type
    if which == OPTIMIZED and record.status == DONE:
        key, fmt = record.optimized_key, record.optimized_type or record.type
    stream = svc.objects.open(key)
    response = Response(
        stream_with_context(_chunks(stream)), mimetype=MEDIA_TYPES.get(fmt)
    )
    response.headers["Content-Length"] = str(
        record.size_after if key == record.optimized_key else record.size_before
    )
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


@blueprint.get("/images/zip/<which>/<ids>")
def download_zip(which: str, ids: str):
    """A zip of the caller's files among `ids`, streamed as it is built."""
    svc = services()
    account = current_account()
    if which not in (ORIGINAL, OPTIMIZED):
        raise NotFound("The file type must be original or optimized.")
    wanted = [int(part) for part in ids.split(",") if part.strip().isdigit()]
    records = [r for r in svc.images.many(wanted) if r.account_id == account.id]
    if not records:
        raise NotFound("None of these images is yours.")
    body = zip_records(svc.objects, records, which)
    response = Response(stream_with_context(body), mimetype="application/zip")
    response.headers["Content-Disposition"] = f'attachment; filename="{which}.zip"'
    return response


def _read_multipart() -> Spooled | None:
    """Parse a multipart body ourselves, spooling its file part; None otherwise."""
    if request.mimetype != "multipart/form-data":
        return None
    boundary = request.mimetype_params.get("boundary", "")
    if not boundary:
        raise BadRequest("The multipart body has no boundary.")
    svc = services()
    cap = svc.settings.max_upload_size
    g.form = MultiDict()  # until the body is read, look only outside it
    account = _account_before_body()
    if account is not None:
        check_quota_left(account, svc)
        cap = file_max_size(account, svc)
    if request.content_length and request.content_length > cap + FORM_SLACK:
        raise FileTooLarge()
    fields, upload = read_form(request.stream, boundary.encode("latin-1"), cap)
    g.form = fields
    return upload


def _account_before_body() -> Account | None:
    """The caller, when the credentials are outside the body (query, Basic)."""
    try:
        return current_account()
    except Unauthorized:
        return None


def _own(image_id: int) -> ImageRecord:
    record = services().images.of_account(current_account().id, image_id)
    if record is None:
        raise NotFound("No image with this id.")
    return record


def _delete(records: list[ImageRecord]) -> None:
    svc = services()
    svc.objects.delete_many(
        key for record in records for key in (record.original_key, record.optimized_key)
    )
    for record in records:
        svc.images.delete(record)


def _page(offset: int, limit: int) -> dict[str, object]:
    base = services().settings.public_base_url
    return {
        "link": f"{base}/v1/images?offset={offset}&limit={limit}",
        "offset": offset,
        "limit": limit,
    }


def _chunks(stream):
    with stream:
        while chunk := stream.read(CHUNK):
            yield chunk
