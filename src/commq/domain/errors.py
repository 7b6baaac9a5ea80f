"""The commq error tree. Each docstring is the error's message.

CommqError
├── InvalidTransitionError      the job is not in a state that allows the action (API: 409)
├── JobNotFoundError            no such job in the caller's business (API: 404)
├── PermissionDeniedError       the caller's role or business may not do this (API: 403)
├── InvalidJobError             a job's fields break a rule (API: 422)
├── InvalidCursorError          a paging cursor could not be read (API: 422)
├── SchemaMismatchError         the database schema is not the one this code expects
├── KeyNotFoundError            no API key has that id or prefix
└── LastAdminKeyError           revoking the key would leave no admin platform key
"""

from __future__ import annotations


class CommqError(Exception):
    """A commq error."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class InvalidTransitionError(CommqError):
    """The job's status does not allow this action."""


class JobNotFoundError(CommqError):
    """Job not found."""


class PermissionDeniedError(CommqError):
    """Your key does not allow this action."""


class InvalidJobError(CommqError):
    """The job is not valid."""

    def __init__(self, message: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        #: The JSON field that broke the rule, for the API's 422 answer.
        self.field = field


class InvalidCursorError(CommqError):
    """The cursor is not one this server issued."""


class SchemaMismatchError(CommqError):
    """The database schema does not match this version of commq; run `commq migrate`."""


class KeyNotFoundError(CommqError):
    """No API key has that id or prefix."""


class LastAdminKeyError(CommqError):
    """This is the last admin platform key: without it no key could administer every business."""
