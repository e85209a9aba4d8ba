"""Error kinds: each names its RFC 6503 code in the source; whose fault it is."""

from __future__ import annotations

import inspect
import re

import focus.core.errors as errors_module
from focus.core.errors import CoreError, ErrorKind


def test_every_kind_documents_its_ccmp_code() -> None:
    source = inspect.getsource(errors_module.ErrorKind)
    for kind in ErrorKind:
        match = re.search(rf'    {kind.name} = .*\n    """(\d{{3}}) ', source)
        assert match, f"{kind.name} has no docstring starting with its RFC 6503 code"


def test_fault() -> None:
    assert CoreError(ErrorKind.CONFLICT_VERSION, "x").client_fault
    assert not CoreError(ErrorKind.STORAGE_FAILED, "x").client_fault
    assert not ErrorKind.RESOURCES_EXHAUSTED.client_fault
    error = CoreError(ErrorKind.NOT_FOUND, "no conference xcon:a@b")
    assert str(error) == "not-found: no conference xcon:a@b"
    assert error.message == "no conference xcon:a@b"
    assert "NOT_FOUND" in repr(error)
