"""Plug-ins found through package entry points (signing providers, delivery transports).

A province ships its own as a Python package declaring an entry point in the group; the
platform loads each once per process. One that cannot be loaded, or does not implement the
interface under its own name, is logged and left out, so a broken package never takes the
others down.
"""

from __future__ import annotations

import logging
from importlib.metadata import entry_points
from typing import Any

log = logging.getLogger("nentang.plugins")


class ConfigError(ValueError):
    """A plug-in's settings that cannot work; ``pointer`` names the offending field inside
    them (a JSON Pointer, relative to the settings)."""

    def __init__(self, pointer: str, message: str) -> None:
        super().__init__(message)
        self.pointer = pointer


def load(group: str, interface: Any, what: str) -> dict[str, Any]:
    """Instances of every entry point in ``group`` that implement ``interface`` (a
    runtime-checkable protocol with a ``name``), by name."""
    found: dict[str, Any] = {}
    for point in entry_points(group=group):
        try:
            plugin: Any = point.load()()
        except Exception:  # a broken third-party package must not take the others down
            log.exception("%s %r could not be loaded", what, point.name)
            continue
        if not isinstance(plugin, interface) or getattr(plugin, "name", None) != point.name:
            log.error("%s %r does not implement its interface under its own name; it is left "
                      "out", what, point.name)
            continue
        found[point.name] = plugin
    return found
