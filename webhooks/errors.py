"""The one error inbound parsers raise: a bad field, named."""

from __future__ import annotations


class InvalidParameter(ValueError):
    """Bad input; `field` names the offending field and the message says what is wrong.

    The message always contains the field name, so the 400 answer alone tells the sender what to fix.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message if field in message else f"{field}: {message}")
        self.field = field
