"""Every API error is JSON with a human-readable message under "detail"."""

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions, status
from rest_framework.views import exception_handler as drf_exception_handler


class BadRequest(exceptions.APIException):
    """A service refused the request (django ValidationError): its message goes to the client."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "The request was refused."
    default_code = "invalid"


def bad_request(exc: DjangoValidationError) -> BadRequest:
    return BadRequest(" ".join(exc.messages))


def _first_message(data) -> str:
    if isinstance(data, dict):
        for field, value in data.items():
            message = _first_message(value)
            if message:
                return message if field == "non_field_errors" else f"{field}: {message}"
    if isinstance(data, list):
        for value in data:
            message = _first_message(value)
            if message:
                return message
    return str(data) if data not in (None, "", [], {}) else ""


def exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        exc = bad_request(exc)
    response = drf_exception_handler(exc, context)
    if response is not None and not (isinstance(response.data, dict) and "detail" in response.data):
        # Field errors keep their structure under "errors"; "detail" says the first in words.
        response.data = {"detail": _first_message(response.data), "errors": response.data}
    if response is not None and isinstance(exc, exceptions.Throttled) and exc.wait:
        # Also in the body, for clients that do not read headers.
        response.data["retry_after"] = int(exc.wait)
    return response
