"""Input types shared by request bodies, parameters and cursors."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

from jsonschema import Draft202012Validator
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


def settings_errors(schema: Mapping[str, Any], instance: Any, prefix: str, whose: str,
                    whose_vi: str) -> list[dict[str, str]]:
    """A plug-in's settings checked against its JSON Schema: one error per fault, pointing
    at the field (a missing one included) and never quoting a value (it may be a secret)."""
    errors = []
    for error in Draft202012Validator(dict(schema)).iter_errors(instance):
        pointer = prefix + "".join(f"/{p}" for p in error.absolute_path)
        if error.validator == "required" and isinstance(error.instance, dict):
            missing = [n for n in error.validator_value if n not in error.instance]
            pointer += f"/{missing[0]}" if missing else ""
        errors.append({"pointer": pointer, "detail": f"Fails the {whose}'s "
                       f"'{error.validator}' rule.", "detail_vi": f"Không đúng yêu cầu của "
                       f"{whose_vi}."})
    return errors
