"""The UI's message catalogues: one JSON file per screen and language in ``messages/``
(``<screen>.<lang>.json``), merged per language. Vietnamese is the reference language: every
key must exist in every language, which :func:`check` (and the tests) enforce."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

MESSAGES_DIR = Path(__file__).with_name("messages")
LANGUAGES = ("vi", "en")
DEFAULT_LANGUAGE = "vi"


@cache
def catalogue(language: str) -> dict[str, str]:
    """Every message of ``language``, keyed ``<screen>.<name>``."""
    if language not in LANGUAGES:
        raise KeyError(language)
    merged: dict[str, str] = {}
    for path in sorted(MESSAGES_DIR.glob(f"*.{language}.json")):
        screen = path.name.split(".", 1)[0]
        messages = json.loads(path.read_text(encoding="utf-8"))
        merged.update({f"{screen}.{key}": value for key, value in messages.items()})
    return merged


def check() -> list[str]:
    """What is missing or extra in each language against Vietnamese."""
    reference = set(catalogue(DEFAULT_LANGUAGE))
    problems: list[str] = []
    for language in LANGUAGES:
        keys = set(catalogue(language))
        problems += [f"{language}: missing {key}" for key in sorted(reference - keys)]
        problems += [f"{language}: extra {key}" for key in sorted(keys - reference)]
    return problems
