"""Exceptions the services raise. They carry no HTTP knowledge; the API maps each to a status
(InvalidInput -> 400, NotFound -> 404, Forbidden -> 403, Conflict -> 409)."""


class ServiceError(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidInput(ServiceError):
    """The caller sent something unusable; `field` names it when there is one."""

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.field = field


class NotFound(ServiceError):
    pass


class Forbidden(ServiceError):
    pass


class Conflict(ServiceError):
    """The request is valid but the current state refuses it (e.g. the item is already full)."""
