"""Errors the services raise; the API maps each class to one HTTP status."""


class ServiceError(Exception):
    """Base class. `detail` is what the client sees: a message or {field: [messages]}."""

    status_code = 400

    def __init__(self, detail):
        super().__init__(detail if isinstance(detail, str) else repr(detail))
        self.detail = detail


class InvalidRequest(ServiceError):
    """The request or the project's data does not allow the action (HTTP 400)."""

    status_code = 400


class Conflict(ServiceError):
    """The action clashes with the current state, e.g. cancelling a finished run (HTTP 409)."""

    status_code = 409


class WorkerUnavailable(ServiceError):
    """The broker could not be reached (HTTP 503)."""

    status_code = 503


class WorkerTimeout(ServiceError):
    """No worker answered in time (HTTP 504)."""

    status_code = 504
