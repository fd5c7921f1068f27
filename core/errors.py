"""Domain errors; the HTTP layer maps each to a status and Flashduty error code."""

from __future__ import annotations


class VigilError(Exception):
    status = 400
    code = "InvalidParameter"


class InvalidInput(VigilError):
    """A request names a bad value; the message names the field."""


class NotFound(VigilError):
    status = 404
    code = "ResourceNotFound"


class IllegalTransition(VigilError):
    """The incident is not in a state that allows the action (e.g. ack of a closed incident)."""

    status = 409
    code = "Conflict"


class PermissionDenied(VigilError):
    status = 403
    code = "AccessDenied"
