"""Every API error is JSON with a human sentence (``detail``) and a machine code (``code``)."""

from django.core.exceptions import PermissionDenied
from django.http import Http404
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


def exception_handler(exc, context):
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or None)
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
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
