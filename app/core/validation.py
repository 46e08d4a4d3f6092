"""Input types shared by request bodies, parameters and cursors."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, StringConstraints

# Control characters and lone surrogates: PostgreSQL text rejects NUL, and a lone surrogate
# cannot be encoded at all, so either would otherwise surface as a 500.
_UNSAFE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def is_safe_text(value: str) -> bool:
    return _UNSAFE.search(value) is None


def safe_text(value: str) -> str:
    if not is_safe_text(value):
        raise ValueError("must not contain control characters or unpaired surrogates")
    return value


Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=255),
    AfterValidator(safe_text),
]
"""A display name: stripped, 1 to 255 characters, no control characters."""
