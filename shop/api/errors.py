"""Error answers: JSON {"error": {"code", "message", "details"}} on every API path,
a simple HTML page on the browser pages of the web UI."""

from __future__ import annotations

import logging
from typing import Any, TypeVar

from flask import Flask, Response, jsonify, render_template, request
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import ClientDisconnected, HTTPException
from werkzeug.http import HTTP_STATUS_CODES

from shop.errors import Conflict, IdempotencyKeyReused, InvalidOrder, NotFound, Refused, RequestRejected

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}

# Paths whose clients expect JSON errors; everything else is a page for people.
JSON_PATHS = (
    "/orders",
    "/products",
    "/admin/api",
    "/healthz",
    "/readyz",
    "/openapi.json",
    "/metrics",
)


def is_json_path(path: str) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in JSON_PATHS)


def error_answer(status: int, code: str, message: str, details: list[Any] | None = None) -> Response:
    """The JSON error body on API paths, an HTML error page on browser pages."""
    if is_json_path(request.path):
        return error_response(status, code, message, details)
    title = HTTP_STATUS_CODES.get(status, "Error")
    page = render_template("error.html", status=status, title=title, message=message)
    return Response(page, status, mimetype="text/html")


def error_response(status: int, code: str, message: str, details: list[Any] | None = None) -> Response:
    response = jsonify({"error": {"code": code, "message": message, "details": details or []}})
    response.status_code = status
    return response


class EncodedBody(RequestRejected):
    """A body in a content coding this API does not decode (RFC 9110 15.5.16: 415 with Accept-Encoding)."""

    headers = {"Accept-Encoding": "identity"}

    def __init__(self) -> None:
        super().__init__(415, "unsupported_content_encoding", "send the body uncompressed, without Content-Encoding")


def request_body() -> bytes:
    """The current request's whole body, or a refusal before anything is parsed or written.

    Refused: a body in a content coding (decoding gzip would need its own size
    limit, and a plain body labelled gzip was taken as JSON), and a body that
    ends before its Content-Length. gunicorn hands the application whatever
    arrived when the client gives up, so a JSON document followed by a
    Content-Length too large made an order once the client closed; that client
    had seen a timeout and retried, and the retry made a second order.
    """
    coding = request.headers.get("Content-Encoding", "").strip().lower()
    if coding not in ("", "identity"):
        raise EncodedBody()
    try:
        raw = request.get_data(cache=False)
    except ClientDisconnected as exc:  # werkzeug's own stream noticed the end (the dev server, tests)
        raise _incomplete() from exc
    except HTTPException:
        raise  # 413: over MAX_BODY_BYTES
    except Exception as exc:  # the server's reader failed mid-body (gunicorn: a chunked body cut short)
        raise _incomplete() from exc
    if request.content_length is not None and len(raw) != request.content_length:
        raise _incomplete()
    return raw


def _incomplete() -> RequestRejected:
    message = "the body ended before its Content-Length (or its last chunk); nothing was written"
    return RequestRejected(400, "incomplete_body", message)


def parse_body(model: type[M], raw: bytes, is_json: bool) -> M:
    """Validate a JSON body against ``model``: 415 not JSON, 400 malformed, 422 invalid."""
    if not is_json:
        raise RequestRejected(415, "unsupported_media_type", "send the body as application/json")
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        if any(e["type"] == "json_invalid" for e in errors):
            raise RequestRejected(400, "malformed_json", "the body is not valid JSON") from exc
        raise RequestRejected(422, "validation_error", "some fields are invalid", errors) from exc


# What each refusal of the domain means in HTTP.
REFUSAL_STATUS: dict[type[Refused], int] = {NotFound: 404, Conflict: 409, InvalidOrder: 422, IdempotencyKeyReused: 422}


def status_of(exc: Refused) -> int:
    if isinstance(exc, RequestRejected):
        return exc.status
    return next((status for kind, status in REFUSAL_STATUS.items() if isinstance(exc, kind)), 400)


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(Refused)
    def _refused(exc: Refused) -> Response:
        response = error_answer(status_of(exc), exc.code, exc.message, exc.details)
        response.headers.update(getattr(exc, "headers", {}))
        return response

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        status = exc.code or 500
        code = _CODES.get(status, "http_error")
        response = error_answer(status, code, exc.description or exc.name)
        # The exception's own headers are part of the answer: Allow on a 405 (RFC 9110
        # 15.5.6), WWW-Authenticate on a 401, Retry-After on a 429 or 503 raised with one.
        for name, value in exc.get_headers():
            if name.lower() != "content-type":
                response.headers.add(name, value)
        # flask-limiter puts Retry-After on the response its on_breach callback built.
        if exc.response is not None and "Retry-After" in exc.response.headers:
            response.headers["Retry-After"] = exc.response.headers["Retry-After"]
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error")
        return error_answer(500, "internal_error", "something went wrong on our side")
