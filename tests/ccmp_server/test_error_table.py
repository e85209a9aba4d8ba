"""The one mapping from the core's ErrorKind to CCMP response codes (RFC 6503 s5.4)."""

from __future__ import annotations

import pytest

from ccmp_server.dispatch import ERROR_TABLE, response_code
from ccmp_server.messages import Operation, ResponseCode
from focus.core.errors import ErrorKind


def test_every_error_kind_has_a_code() -> None:
    # A kind the core adds later must be mapped here, not silently become a 500.
    assert set(ERROR_TABLE) == set(ErrorKind)


@pytest.mark.parametrize("kind", list(ErrorKind))
def test_response_strings_are_the_registry_defaults(kind: ErrorKind) -> None:
    code, text = ERROR_TABLE[kind]
    assert text == code.reason  # RFC 6503 s12.5.2
    if kind is not ErrorKind.INVALID_CONF_INFO:
        assert response_code(kind, Operation.UPDATE) is code


def test_unacceptable_values_are_400_on_create_and_409_on_update() -> None:
    assert response_code(ErrorKind.INVALID_CONF_INFO, Operation.CREATE) is ResponseCode.BAD_REQUEST
    assert response_code(ErrorKind.INVALID_CONF_INFO, Operation.UPDATE) is ResponseCode.CONFLICT


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        (ErrorKind.FORBIDDEN, 401),
        (ErrorKind.OPERATION_NOT_ALLOWED, 403),
        (ErrorKind.NOT_FOUND, 404),
        (ErrorKind.CONFLICT_VERSION, 409),
        (ErrorKind.USER_NOT_FOUND, 420),
        (ErrorKind.INVALID_CONF_USER_ID, 421),
        (ErrorKind.WRONG_PASSWORD, 422),
        (ErrorKind.PASSWORD_REQUIRED, 423),
        (ErrorKind.AUTHENTICATION_REQUIRED, 424),
        (ErrorKind.DELETE_PARENT_FAILED, 425),
        (ErrorKind.PARENT_ENFORCED, 426),
        (ErrorKind.INVALID_DOMAIN, 427),
        (ErrorKind.STORAGE_FAILED, 500),
        (ErrorKind.RESOURCES_EXHAUSTED, 511),
    ],
)
def test_rfc_6503_codes(kind: ErrorKind, code: int) -> None:
    assert int(response_code(kind, None)) == code
