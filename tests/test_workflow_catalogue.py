"""The example workflows under ``workflows/``: each is publishable with the built-in roles and
its form, and each of its simulations takes exactly the path it says (pure, no database)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app.forms.definitions import FormValidator, declared_fields
from app.identity.permissions import BUILTIN_ROLES
from app.workflows import service
from app.workflows.definitions import Context, check_publishable

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted(p.parent.name for p in (ROOT / "workflows").glob("*/workflow.json"))
SIMULATIONS = sorted((ROOT / "workflows").glob("*/simulations/*.json"))


def load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


def test_the_catalogue_has_the_four_processes() -> None:
    assert WORKFLOWS == ["ho-kinh-doanh", "khieu-nai", "thi-nang-ngach", "tuyen-dung"]
    assert len(SIMULATIONS) >= 8


@pytest.mark.parametrize("key", WORKFLOWS)
def test_each_workflow_is_publishable_with_its_form(key: str) -> None:
    document = load(ROOT / "workflows" / key / "workflow.json")
    form = load(ROOT / "forms" / document["form"] / "form.json")
    context = Context(roles=frozenset(BUILTIN_ROLES), form_fields=declared_fields(form))
    assert check_publishable(document, context) == document


@pytest.mark.parametrize("path", SIMULATIONS, ids=lambda p: f"{p.parents[1].name}/{p.stem}")
def test_each_simulation_takes_its_path(path: Path) -> None:
    simulation = load(path)
    document = load(path.parents[1] / "workflow.json")
    form = load(ROOT / "forms" / document["form"] / "form.json")
    assert FormValidator(form).errors(simulation["data"]) == []
    result = service.simulate(document, simulation["data"], simulation["steps"])
    expect = simulation["expect"]
    assert (result.path, result.state) == (expect["path"], expect["state"])
    if expect["refused"] is None:
        assert result.refused is None
    else:
        assert result.refused is not None
        assert (result.refused[0], result.refused[1].code) == (expect["refused"]["step"],
                                                               expect["refused"]["code"])
