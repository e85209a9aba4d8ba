"""What went wrong in the conference core, and whose fault it is.

The core says WHAT went wrong (an :class:`ErrorKind`); each front end maps the kind to its
own wire answer (the CCMP server to an RFC 6503 s5.4 response code, the SIP focus to a SIP
status).  The docstring of every kind names the CCMP code it stands for.
"""

from __future__ import annotations

import enum


class ErrorKind(enum.Enum):
    """Reasons a core command or query is refused (RFC 6503 s5.4 response codes)."""

    BAD_REQUEST = "bad-request"
    """400 Bad Request: the command is malformed (a required part is missing, an
    AUTO_GENERATE_X placeholder outside a value, an impossible combination of parameters)."""

    FORBIDDEN = "forbidden"
    """401 Unauthorized: the role policy does not let this actor perform the operation."""

    OPERATION_NOT_ALLOWED = "operation-not-allowed"
    """403 Forbidden: nobody may perform this operation on this object (e.g. deleting a
    blueprint, creating or deleting the <users> element)."""

    NOT_FOUND = "not-found"
    """404 Object Not Found: the target conference object (confObjID) does not exist, or
    is of another kind than the operation addresses (e.g. a blueprint asked for as a
    conference, a sidebar-by-ref asked for as a sidebar-by-val)."""

    CONFLICT_VERSION = "conflict-version"
    """409 Conflict: the update was made against a stale version of the object."""

    CONFLICT = "conflict"
    """409 Conflict: the requested change is not feasible (values that cannot be applied
    to the object, e.g. a sidebar user who is not in the parent conference)."""

    CONF_EXISTS = "conf-exists"
    """409 Conflict: a conference object with the requested entity already exists."""

    USER_EXISTS = "user-exists"
    """409 Conflict: the user to be added is already in the conference."""

    INVALID_CONF_INFO = "invalid-conf-info"
    """400 Bad Request on create / 409 Conflict on update: the conference document carries
    unacceptable values (e.g. a conference-time base that is not a valid iCalendar
    object, a negative maximum-user-count)."""

    USER_NOT_FOUND = "user-not-found"
    """420 User Not Found: the user named by the userInfo entity is not in the conference
    (or, on a third-party create, is unknown)."""

    INVALID_CONF_USER_ID = "invalid-conf-user-id"
    """421 Invalid confUserID: the requesting actor's XCON-USERID is unknown."""

    WRONG_PASSWORD = "wrong-password"  # noqa: S105 (a kind, not a secret)
    """422 Invalid Conference Password: the conference password given does not match."""

    PASSWORD_REQUIRED = "password-required"  # noqa: S105 (a kind, not a secret)
    """423 Conference Password Required: the conference is password protected and the
    request carries no password."""

    AUTHENTICATION_REQUIRED = "authentication-required"
    """424 Authentication Required: credentials are missing or do not match an account."""

    DELETE_PARENT_FAILED = "delete-parent-failed"
    """425 Forbidden Delete Parent: the object is the parent of linked children (sidebars,
    dependent reservations) that depend on it."""

    PARENT_ENFORCED = "parent-enforced"
    """426 Forbidden Change Protected: the element is parent-enforceable in a linked child
    and can only be changed through the parent."""

    INVALID_DOMAIN = "invalid-domain"
    """427 Invalid Domain Name: an AUTO_GENERATE_X placeholder names a domain outside the
    server's domain of responsibility."""

    STORAGE_FAILED = "storage-failed"
    """500 Server Internal Error: the change could not be made durable; nothing changed."""

    RESOURCES_EXHAUSTED = "resources-exhausted"
    """511 Resources Not Available: a limit is reached (maximum-user-count of the
    conference, the system's limit on conferences or sidebars)."""

    @property
    def client_fault(self) -> bool:
        """Whether the requester caused it (and resending the same request will fail
        again); False for the system's own limits and failures (511, 500)."""
        return self not in (ErrorKind.STORAGE_FAILED, ErrorKind.RESOURCES_EXHAUSTED)


class CoreError(Exception):
    """A refused command: ``kind`` says what to answer, ``message`` says why, for humans."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(f"{kind.value}: {message}")
        self.kind = kind
        self.message = message

    @property
    def client_fault(self) -> bool:
        """Whether the requester caused it (see :attr:`ErrorKind.client_fault`)."""
        return self.kind.client_fault

    def __repr__(self) -> str:
        return f"CoreError({self.kind!s}, {self.message!r})"
