"""Every API error is JSON with a human sentence (``detail``) and a machine code (``code``); a database or
Redis outage is a 503 with a sentence, for the API and the pages alike (ServiceUnavailableMiddleware)."""

import logging
import sys

import kombu.exceptions
import redis.exceptions
from django import db
from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig, TooManyFieldsSent
from django.http import Http404, HttpResponse, JsonResponse
from django.templatetags.static import static
from django.urls import is_valid_path
from django.utils.html import format_html
from django.views import defaults
from rest_framework import exceptions
from rest_framework.views import exception_handler as drf_exception_handler


def _first(errors, *, with_field: bool) -> str:
    """The first message (or code) of DRF's nested error structure, prefixed by its field name."""
    if isinstance(errors, dict):
        for field, value in errors.items():
            inner = _first(value, with_field=with_field)
            if not with_field or field in {"non_field_errors", "detail"}:
                return inner
            return f"{field}: {inner}"
    if isinstance(errors, list) and errors:
        return _first(errors[0], with_field=with_field)
    return str(errors)


class PayloadTooLarge(exceptions.APIException):
    status_code = 413
    default_detail = "The request body is too large."
    default_code = "too_large"


def _megabytes(size: int) -> str:
    return f"{size / 1024 / 1024:.3g} MB"


def exception_handler(exc, context):
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or None)
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    elif isinstance(exc, RequestDataTooBig):  # Django's guard, raised when a view first reads request.data
        exc = PayloadTooLarge(
            f"The request body is larger than {_megabytes(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)}, the most one "
            "request may carry (files uploaded as multipart parts do not count); send it in smaller parts."
        )
    elif isinstance(exc, TooManyFieldsSent):
        exc = exceptions.ValidationError(
            f"The request has more than {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS} form fields, the most one may carry."
        )
    elif isinstance(exc, exceptions.ParseError):  # DRF's "JSON parse error - Expecting value: line 1 column 2 …"
        exc = exceptions.ParseError(
            f"The request body is not valid JSON ({str(exc.detail).removeprefix('JSON parse error - ').rstrip('.')}); "
            "send a JSON object."
            if str(exc.detail).startswith("JSON parse error")
            else str(exc.detail)
        )
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        if exc.get_codes() == {"non_field_errors": ["null"]}:  # a JSON null for the whole body: "No data provided"
            exc = exceptions.ValidationError(
                {"non_field_errors": ["The request body is empty (null); send a JSON object."]}, code="null"
            )
        errors = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        response.data = {
            "detail": _first(exc.detail, with_field=True),
            "code": _first(exc.get_codes(), with_field=False),
            "errors": errors,
        }
    elif isinstance(response.data, dict) and "detail" in response.data:
        detail = response.data["detail"]
        response.data = {"detail": str(detail), "code": getattr(detail, "code", None) or exc.default_code}
    return response


# ---- Outages: the database or Redis (broker and cache) unreachable -----------------------------------------
# A request that meets one answers 503 with a sentence and a Retry-After, not a 500: the request was sound and
# will work once the service is back. The write it was doing rolled back with its transaction (services write
# in transaction.atomic), so a retry — with the same idempotency key for a HIT submit — is safe.
RETRY_AFTER_SECONDS = 5
_OUTAGES = (
    (
        (db.OperationalError, db.InterfaceError),
        "database_unavailable",
        "The database is unavailable right now, so your request was not completed; try again in a moment.",
    ),
    (
        (kombu.exceptions.OperationalError,),
        "queue_unavailable",
        "The task queue is unavailable right now; try again in a moment.",
    ),
    (
        (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, redis.exceptions.BusyLoadingError),
        "cache_unavailable",
        "The cache is unavailable right now, so your request was not completed; try again in a moment.",
    ),
)
logger = logging.getLogger("synsight.outage")


def outage_of(exc: BaseException | None) -> tuple[str, str] | None:
    """(code, sentence) when this exception, or one it was raised from, is a database or Redis outage."""
    for _ in range(5):
        if exc is None:
            return None
        for types, code, sentence in _OUTAGES:
            if isinstance(exc, types):
                return code, sentence
        exc = exc.__cause__ or exc.__context__
    return None


def _wants_json(request) -> bool:
    if request.path.startswith("/api/"):
        return True
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Temporarily unavailable · Synsight</title>
<link rel="stylesheet" href="{css}"></head>
<body><main><h1>Synsight is briefly unavailable</h1><p class="lead">{sentence}</p>
<p><a href="">Try again</a></p></main></body></html>
"""


class ServiceUnavailableMiddleware:
    """503 with a sentence when a view meets a database or Redis outage: JSON ``detail`` + ``code`` for the
    API (DRF's handler passes these exceptions on), a plain page for the browser — plain because the site's
    base template reads the signed-in user from the database that may be the thing that is down."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        return _outage_response(request, exception)


def _outage_response(request, exception: BaseException | None) -> HttpResponse | None:
    outage = outage_of(exception)
    if outage is None:
        return None
    code, sentence = outage
    logger.warning("%s on %s %s: %s", code, request.method, request.path, exception, exc_info=exception)
    if _wants_json(request):
        response = JsonResponse({"detail": sentence, "code": code}, status=503)
    else:
        page = format_html(_PAGE, css=static("frontend/site.css"), sentence=sentence)
        response = HttpResponse(page, status=503, content_type="text/html; charset=utf-8")
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def not_found(request, exception):
    """handler404: a URL no route matches. Under /api/ the answer is JSON with a sentence, like every other
    API error, and points to the list of endpoints; a page gets Django's page."""
    if _wants_json(request):
        sentence = f"There is no API endpoint at {request.path}; the endpoints are listed at /api/v1/docs/."
        return JsonResponse({"detail": sentence, "code": "not_found"}, status=404)
    return defaults.page_not_found(request, exception)


class DebugApiNotFoundMiddleware:
    """Under DEBUG (the demo) Django answers a URL no route matches with its technical HTML page and never
    consults handler404; under /api/ that answer is replaced by ``not_found``'s JSON, as without DEBUG. Only
    when no route matched (``resolver_match`` unset): a view's own 404 is left as the view wrote it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            settings.DEBUG
            and response.status_code == 404
            and request.resolver_match is None
            and request.path.startswith("/api/")
        ):
            return not_found(request, None)
        return response


class ApiTrailingSlashMiddleware:
    """Before CommonMiddleware: a POST, PUT, PATCH or DELETE to an API URL without its trailing slash, whose
    slashed form is an endpoint, answers 404 with a sentence that names the URL to use. CommonMiddleware's
    APPEND_SLASH would answer a 301 that clients follow as a GET (the request silently lost), or under DEBUG a
    RuntimeError as an HTML 500. A GET keeps the redirect: it loses nothing."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        path = request.path_info
        if (
            request.method not in {"GET", "HEAD", "OPTIONS"}
            and path.startswith("/api/")
            and not path.endswith("/")
            and not is_valid_path(path, getattr(request, "urlconf", None))
            and is_valid_path(f"{path}/", getattr(request, "urlconf", None))
        ):
            sentence = (
                f"There is no API endpoint at {request.path}: the API's URLs end with a slash; "
                f"send the {request.method} to {request.path}/."
            )
            return JsonResponse({"detail": sentence, "code": "no_trailing_slash"}, status=404)
        return self.get_response(request)


def bad_request(request, exception):
    """handler400: a request Django refused before any view (a disallowed host, a malformed cookie or header).
    JSON with a sentence for the API."""
    if _wants_json(request):
        sentence = "The request is malformed and was refused before it reached the API; check its headers."
        return JsonResponse({"detail": sentence, "code": "bad_request"}, status=400)
    return defaults.bad_request(request, exception)


def server_error(request):
    """handler500. An error raised outside a view — a middleware saving the session after the view, say —
    never reaches ServiceUnavailableMiddleware; Django calls this handler inside its ``except`` block, so an
    outage still answers 503 with its sentence here. Anything else: 500, JSON with a sentence for the API."""
    response = _outage_response(request, sys.exc_info()[1])
    if response is not None:
        return response
    if _wants_json(request):
        sentence = "Something went wrong on our side; it has been logged. Please try again later."
        return JsonResponse({"detail": sentence, "code": "server_error"}, status=500)
    return defaults.server_error(request)
