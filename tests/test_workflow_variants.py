"""Workflow variants may add local steps and narrow, never loosen (pure, no database)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.workflows.variants import check_variant

ROOT = Path(__file__).resolve().parents[1] / "workflows"
CATALOGUE = sorted(p.parent.name for p in ROOT.glob("*/workflow.json"))
TEXT = {"vi": "Bước", "en": "Step"}


def load(key: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((ROOT / key / "workflow.json").read_text())
    return document


def found(parent: dict[str, Any], variant: dict[str, Any]) -> dict[str, str]:
    return {e.pointer: e.keyword for e in check_variant(parent, variant)}


def insert_step(document: dict[str, Any], action_index: int, name: str) -> dict[str, Any]:
    """A local review step inserted on one action: the action now goes to the new state, and
    a new action goes on from there to the old target."""
    variant = copy.deepcopy(document)
    action = variant["actions"][action_index]
    target = action["to"]
    action["to"] = name
    variant["states"].append({"name": name, "type": "task", "title": TEXT})
    variant["actions"].append({"name": f"{name}_xong", "title": TEXT, "from": name,
                               "to": target, "roles": ["officer"]})
    return variant


@pytest.mark.parametrize("key", CATALOGUE)
def test_a_workflow_narrows_itself(key: str) -> None:
    assert check_variant(load(key), load(key)) == []


@pytest.mark.parametrize("key", CATALOGUE)
def test_an_extra_local_review_step_is_allowed(key: str) -> None:
    parent = load(key)
    variant = insert_step(parent, 0, "xa_ra_soat")
    variant["states"][0]["title"] = {"vi": "Tiếp nhận tại xã", "en": "Received at commune"}
    assert check_variant(parent, variant) == []


def test_removing_or_retyping_what_the_parent_has() -> None:
    parent = load("ho-kinh-doanh")
    variant = copy.deepcopy(parent)
    dropped_state = variant["states"].pop(2)["name"]
    variant["actions"] = [a for a in variant["actions"]
                          if a["to"] != dropped_state and dropped_state not in (
                              [a["from"]] if isinstance(a["from"], str) else a["from"])]
    problems = check_variant(parent, variant)
    assert {e.keyword for e in problems} >= {"removed"}
    assert any(dropped_state in e.en for e in problems)
    retyped = copy.deepcopy(parent)
    terminal = next(i for i, s in enumerate(retyped["states"]) if s["type"] == "terminal")
    retyped["states"][terminal]["outcome"] = (
        "completed" if retyped["states"][terminal]["outcome"] != "completed" else "approved")
    assert found(parent, retyped) == {f"/states/{terminal}/type": "type"}


def transitions(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(s, a["to"]) for a in document["actions"]
            for s in ([a["from"]] if isinstance(a["from"], str) else a["from"])}


def test_new_endings_shortcuts_and_pauses_are_refused() -> None:
    parent = load("ho-kinh-doanh")
    start = parent["states"][0]["name"]
    ending = next(s["name"] for s in parent["states"] if s["type"] == "terminal"
                  and (start, s["name"]) not in transitions(parent))
    variant = copy.deepcopy(parent)
    variant["actions"].append({"name": "tat", "title": TEXT, "from": start, "to": ending,
                               "roles": ["officer"]})
    assert found(parent, variant) == {f"/actions/{len(variant['actions']) - 1}/to": "path"}
    ended = insert_step(parent, 0, "ket_thuc_som")
    ended["states"][-1].update(type="terminal", outcome="completed")
    ended["actions"].pop()
    assert found(parent, ended)[f"/states/{len(ended['states']) - 1}/type"] == "ending"
    paused = insert_step(parent, 0, "cho_xa")
    paused["states"][-1]["waits_on_applicant"] = True
    assert found(parent, paused) == {f"/states/{len(paused['states']) - 1}/waits_on_applicant":
                                     "pause"}


def test_widening_who_acts_or_dropping_checks_is_refused() -> None:
    parent = load("ho-kinh-doanh")
    signed = next(i for i, a in enumerate(parent["actions"]) if "signature" in a)
    guarded = next(i for i, a in enumerate(parent["actions"]) if "guard" in a)
    commented = next((i for i, a in enumerate(parent["actions"])
                      if a.get("comment") == "required"), None)
    variant = copy.deepcopy(parent)
    variant["actions"][0]["roles"] = [*variant["actions"][0]["roles"], "tenant_admin"]
    del variant["actions"][signed]["signature"]
    variant["actions"][guarded]["guard"] = True
    if commented is not None:
        variant["actions"][commented]["comment"] = "optional"
    problems = found(parent, variant)
    assert problems["/actions/0/roles"] == "roles"
    assert problems[f"/actions/{signed}/signature"] == "signature"
    assert problems[f"/actions/{guarded}/guard"] == "guard"
    if commented is not None:
        assert problems[f"/actions/{commented}/comment"] == "comment"

    stricter = copy.deepcopy(parent)
    stricter["actions"][guarded]["guard"] = {"allOf": [parent["actions"][guarded]["guard"],
                                                       {"required": ["email"]}]}
    stricter["actions"][0]["at"] = "parent"
    assert check_variant(parent, stricter) == []


def test_time_limits_may_shrink_not_grow() -> None:
    parent = load("ho-kinh-doanh")
    assert "sla" in parent
    longer = copy.deepcopy(parent)
    longer["sla"]["duration"] = "P30D"
    assert found(parent, longer) == {"/sla": "sla"}
    calendar = copy.deepcopy(parent)
    calendar["sla"]["days"] = "calendar"
    assert check_variant(parent, calendar) == []
    no_breach_rules = copy.deepcopy(parent)
    no_breach_rules["sla"]["on_breach"] = []
    assert found(parent, no_breach_rules) == {"/sla": "sla"}


def test_approval_keeps_seats_and_quorum() -> None:
    parent = load("tuyen-dung")
    index = next(i for i, s in enumerate(parent["states"]) if s["type"] == "approval")
    fewer = copy.deepcopy(parent)
    fewer["states"][index]["approval"]["seats"].pop()
    assert found(parent, fewer) == {f"/states/{index}/approval": "approval"}
    more = copy.deepcopy(parent)
    more["states"][index]["approval"]["seats"].append("reviewer")
    assert check_variant(parent, more) == []


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(CATALOGUE), st.data())
def test_inserting_steps_anywhere_is_allowed_and_skipping_a_target_is_not(
        key: str, data: st.DataObject) -> None:
    parent = load(key)
    index = data.draw(st.integers(0, len(parent["actions"]) - 1))
    variant = insert_step(parent, index, "buoc_moi")
    assert check_variant(parent, variant) == []
    action = parent["actions"][index]
    sources = {action["from"]} if isinstance(action["from"], str) else set(action["from"])
    allowed = transitions(parent)
    elsewhere = [s["name"] for s in parent["states"] if s["type"] != "start"
                 and all((src, s["name"]) not in allowed and src != s["name"]
                         for src in sources)]
    if elsewhere:
        variant["actions"][-1]["to"] = data.draw(st.sampled_from(elsewhere))
        assert "path" in {e.keyword for e in check_variant(parent, variant)}
