"""Turning service exceptions into HTTP responses, in one place for every feedback view."""
from rest_framework import status
from rest_framework.response import Response

from feedback.services.errors import Conflict, Forbidden, InvalidInput, NotFound, ServiceError
from feedback.services.import_formats import ImportFileError

STATUS_FOR = {
    InvalidInput: status.HTTP_400_BAD_REQUEST,
    Forbidden: status.HTTP_403_FORBIDDEN,
    NotFound: status.HTTP_404_NOT_FOUND,
    Conflict: status.HTTP_409_CONFLICT,
}


def error_body(exc: ServiceError) -> dict:
    """{"detail": message} plus "field" (and "line" for import files) when known."""
    body = {"detail": exc.message}
    if isinstance(exc, InvalidInput) and exc.field is not None:
        body["field"] = exc.field
    if isinstance(exc, ImportFileError):
        body["line"] = exc.line
    return body


class ServiceErrorsMixin:
    """Mix into an APIView: service exceptions become 400/403/404/409 with a JSON message."""

    def handle_exception(self, exc):
        for exc_type, code in STATUS_FOR.items():
            if isinstance(exc, exc_type):
                return Response(error_body(exc), status=code)
        return super().handle_exception(exc)
