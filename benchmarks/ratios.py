"""Medians of paired timings and their ratio, printed as a table: the report of every
benchmark that compares a side against a baseline measured in the same run."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence


def report(figures: Mapping[str, Sequence[tuple[float, float]]], *, label: str,
           baseline: str, measured: str, digits: int = 3) -> dict[str, dict[str, float]]:
    """``figures`` maps a kind to (baseline seconds, measured seconds) per round. Prints one
    line per kind (medians in ms, measured / baseline) and returns the same figures, keyed
    ``<baseline>_ms``, ``<measured>_ms`` and ``ratio``."""
    results: dict[str, dict[str, float]] = {}
    print(f"{label:<12}{baseline + ' ms':>10}{measured + ' ms':>10}{'ratio':>8}")
    for kind, pairs in figures.items():
        base_ms = statistics.median(p[0] for p in pairs) * 1000
        measured_ms = statistics.median(p[1] for p in pairs) * 1000
        results[kind] = {f"{baseline}_ms": base_ms, f"{measured}_ms": measured_ms,
                         "ratio": measured_ms / base_ms}
        print(f"{kind:<12}{base_ms:>10.{digits}f}{measured_ms:>10.{digits}f}"
              f"{measured_ms / base_ms:>8.2f}")
    return results
