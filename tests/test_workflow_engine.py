"""The workflow interpreter and the publish-time checks, as pure functions (no database)."""

from __future__ import annotations

import copy
import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.forms.definitions import DefinitionError
from app.workflows import engine
from app.workflows.definitions import (
    Context,
    check_publishable,
    check_shape,
    compile_workflow,
    graph_problems,
)
from app.workflows.engine import Actor, Case, Refused, Request

TEXT = {"vi": "Tên", "en": "Name"}
CONTEXT = Context(roles=frozenset({"officer", "reviewer", "tenant_admin"}),
                  form_fields=frozenset({"ho_ten", "so_tien", "loai"}))


def state(name: str, kind: str = "task", **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": kind, "title": TEXT, **extra}


def action(name: str, source: str | list[str], target: str, roles: list[str] | None = None,
           **extra: Any) -> dict[str, Any]:
    return {"name": name, "title": TEXT, "from": source, "to": target,
            "roles": roles or ["officer"], **extra}


def definition(**changes: Any) -> dict[str, Any]:
    """Receipt → review → (approve | reject), with a loop back for more documents."""
    document: dict[str, Any] = {
        "kind": "Workflow", "key": "thu-nghiem", "title": TEXT, "form": "thu-nghiem",
        "states": [state("tiep_nhan", "start"), state("tham_dinh"),
                   state("cho_bo_sung", waits_on_applicant=True),
                   state("da_duyet", "terminal", outcome="approved"),
                   state("tu_choi", "terminal", outcome="rejected")],
        "actions": [action("tiep_nhan_ho_so", "tiep_nhan", "tham_dinh"),
                    action("yeu_cau_bo_sung", "tham_dinh", "cho_bo_sung", comment="required"),
                    action("nop_bo_sung", "cho_bo_sung", "tham_dinh", ["applicant"]),
                    action("duyet", "tham_dinh", "da_duyet", ["reviewer"]),
                    action("tu_choi", ["tiep_nhan", "tham_dinh"], "tu_choi", ["reviewer"])],
    }
    document.update(changes)
    return document


def problems(document: dict[str, Any], context: Context = CONTEXT) -> dict[str, str]:
    try:
        check_publishable(document, context)
    except DefinitionError as exc:
        return {e.pointer: e.keyword for e in exc.errors}
    return {}


OFFICER = Actor("can-bo", {"officer": frozenset({"case"})})
REVIEWER = Actor("lanh-dao", {"reviewer": frozenset({"case"})})
APPLICANT = Actor("cong-dan", is_applicant=True)


def run(document: dict[str, Any], case: Case, actor: Actor, name: str,
        **request: Any) -> engine.Outcome:
    return engine.take(compile_workflow(check_shape(document)), case, actor,
                       Request(name, **request))


def refusal(document: dict[str, Any], case: Case, actor: Actor, name: str,
            **request: Any) -> Refused:
    with pytest.raises(Refused) as caught:
        run(document, case, actor, name, **request)
    return caught.value


# ---- publish-time checks -----------------------------------------------------------------


def test_the_sample_is_publishable() -> None:
    assert problems(definition()) == {}


def test_unreachable_state_is_named() -> None:
    document = definition()
    document["states"].append(state("mo_coi"))
    document["actions"].append(action("dong", "mo_coi", "tu_choi"))
    assert problems(document) == {"/states/5": "unreachable"}


def test_state_with_no_way_out_is_named() -> None:
    document = definition()
    document["states"].append(state("ket"))
    document["actions"] += [action("vao_ket", "tham_dinh", "ket"),
                            action("quay_vong", "ket", "ket")]
    assert problems(document) == {"/states/5": "no-way-out"}


def test_duplicate_names_are_named() -> None:
    document = definition()
    document["actions"].append(action("duyet", "tiep_nhan", "da_duyet", ["reviewer"]))
    document["states"].append(state("tham_dinh"))
    found = problems(document)
    assert found["/actions/5/name"] == "duplicate"
    assert found["/states/5/name"] == "duplicate"


def test_start_and_terminal_states_are_required() -> None:
    document = definition()
    document["states"][1]["type"] = "start"
    assert problems(document)["/states/1/type"] == "start"
    no_start = definition()
    no_start["states"][0]["type"] = "task"
    assert problems(no_start)["/states"] == "start"
    endless = definition(states=[state("a", "start"), state("b")],
                         actions=[action("x", "a", "b"), action("y", "b", "a")])
    assert problems(endless)["/states"] == "terminal"


def test_actions_name_existing_states_and_never_leave_terminal_ones() -> None:
    document = definition()
    document["actions"] += [action("di_dau", "tham_dinh", "khong_co"),
                            action("mo_lai", ["tham_dinh", "da_duyet"], "tham_dinh"),
                            action("tu_dau", "khong_co_nua", "tham_dinh")]
    found = problems(document)
    assert found["/actions/5/to"] == "unknown-state"
    assert found["/actions/6/from/1"] == "terminal"
    assert found["/actions/7/from"] == "unknown-state"


def test_unknown_roles_forms_and_fields() -> None:
    document = definition()
    document["actions"][0]["roles"] = ["officer", "thu_ky"]
    document["actions"][3]["guard"] = {"properties": {"so_tien": {"maximum": 10}},
                                       "required": ["khong_co"]}
    document["sla"] = {"duration": "P5D", "on_breach": [{"type": "escalate", "role": "ai_do"}]}
    found = problems(document)
    assert found["/actions/0/roles/1"] == "unknown-role"
    assert found["/actions/3/guard/required/0"] == "unknown-field"
    assert "/actions/3/guard/properties/so_tien" not in found
    assert found["/sla/on_breach/0/role"] == "unknown-role"
    no_form = problems(definition(), Context(roles=CONTEXT.roles, form_fields=None))
    assert no_form == {"/form": "unknown-form"}


def test_guards_may_name_fields_that_actions_fill() -> None:
    document = definition()
    document["actions"][1]["fields"] = {"ket_qua": {"title": TEXT, "schema": {"enum": ["dat"]}}}
    document["actions"][3]["guard"] = {"if": {"required": ["loai"]},
                                       "then": {"properties": {"ket_qua": {"const": "dat"}}},
                                       "anyOf": [{"required": ["khong_co"]}, True]}
    assert problems(document) == {"/actions/3/guard/anyOf/0/required/0": "unknown-field"}


NESTED_FORM = {
    "type": "object",
    "properties": {
        "ho_ten": {"type": "string"}, "so_tien": {"type": "integer"}, "loai": {"enum": ["a"]},
        "dia_chi": {"$ref": "#/$defs/dia_chi"},
        "nganh_nghe": {"type": "array", "items": {"type": "object", "properties": {
            "ma_nganh": {"type": "string"}}}},
        "ghi_chu_them": {"type": "object"},
    },
    "$defs": {"dia_chi": {"type": "object", "properties": {
        "tinh": {"type": "string"}, "xa": {"type": "string"}}}},
}
NESTED = Context(roles=CONTEXT.roles, form_fields=frozenset(NESTED_FORM["properties"]),
                 form_schema=NESTED_FORM)


def test_guards_naming_nested_fields_are_checked_against_the_schemas() -> None:
    document = definition()
    document["actions"][1]["fields"] = {"ket_qua": {"title": TEXT, "schema": {
        "type": "object", "properties": {"diem": {"type": "integer"}}}}}
    document["actions"][3]["guard"] = {"properties": {
        "dia_chi": {"properties": {"tinh": {"const": "79"}, "huyen": {"const": "1"}},
                    "required": ["xa", "thon"]},
        "nganh_nghe": {"contains": {"properties": {"ma_nganh": {"const": "4711"},
                                                   "ma_cu": {"const": "x"}}}},
        "ghi_chu_them": {"required": ["bat_ky"]},
        "ket_qua": {"properties": {"diem": {"minimum": 5}, "hang": {"const": "A"}}},
        "ho_ten": {"properties": {"ten": {"const": "x"}}},
    }}
    guard = "/actions/3/guard/properties"
    assert problems(document, NESTED) == {
        f"{guard}/dia_chi/properties/huyen": "unknown-field",
        f"{guard}/dia_chi/required/1": "unknown-field",
        f"{guard}/nganh_nghe/contains/properties/ma_cu": "unknown-field",
        f"{guard}/ket_qua/properties/hang": "unknown-field",
        f"{guard}/ho_ten/properties/ten": "unknown-field",  # a string has no fields
    }
    # Without the form's schema, the form's nested fields cannot be checked; actions' can.
    unknown_schema = Context(roles=CONTEXT.roles, form_fields=NESTED.form_fields)
    assert problems(document, unknown_schema) == {
        f"{guard}/ket_qua/properties/hang": "unknown-field"}


def test_a_nested_field_under_an_applicator_or_an_open_object_is_declared() -> None:
    form = {**NESTED_FORM, "allOf": [{"if": {"required": ["loai"]}, "then": {"properties": {
        "dia_chi": {"properties": {"ghi_chu": {"type": "string"}}}}}}],
        "properties": {**NESTED_FORM["properties"],
                       "phu_luc": {"type": "object", "additionalProperties": {"type": "string"}},
                       "mo_rong": {"$ref": "https://example.org/other.json"}}}
    context = Context(roles=CONTEXT.roles, form_fields=frozenset(form["properties"]),
                      form_schema=form)
    document = definition()
    document["actions"][3]["guard"] = {"properties": {
        "dia_chi": {"properties": {"ghi_chu": {"const": "x"}}},
        "phu_luc": {"required": ["so_1"]}, "mo_rong": {"required": ["gi_cung_duoc"]},
        "ghi_chu_them": {"required": ["bat_ky"]}}}
    assert problems(document, context) == {}


def test_action_fields_may_not_overwrite_the_applicants_data() -> None:
    document = definition()
    document["actions"][1]["fields"] = {"ho_ten": {"title": TEXT, "schema": {}}}
    assert problems(document) == {"/actions/1/fields/ho_ten": "field-clash"}


def test_signature_steps_need_a_signer_who_may_take_the_action() -> None:
    document = definition()
    document["actions"][3]["signature"] = {"required": True}
    document["actions"][4]["signature"] = {"required": True, "role": "officer"}
    found = problems(document)
    assert found == {"/actions/3/signature": "signer", "/actions/4/signature/role": "signer"}
    document["actions"][3]["signature"] = {"required": False}
    document["actions"][4]["signature"]["role"] = "reviewer"
    assert problems(document) == {}


def test_system_actions_cannot_require_input() -> None:
    document = definition()
    document["actions"][4]["roles"] = ["reviewer", "system"]
    document["actions"][4]["comment"] = "required"
    assert problems(document) == {"/actions/4/roles": "system"}


def test_breach_actions_must_be_automatic_and_available() -> None:
    document = definition()
    document["states"][1]["sla"] = {"duration": "P5D", "on_breach": [
        {"type": "action", "action": "tu_choi"}, {"type": "action", "action": "khong_co"},
        {"type": "action", "action": "tiep_nhan_ho_so"}]}
    document["actions"][4]["roles"] = ["reviewer", "system"]
    document["actions"][0]["roles"] = ["officer", "system"]
    found = problems(document)
    assert found == {"/states/1/sla/on_breach/1/action": "unknown-action",
                     "/states/1/sla/on_breach/2/action": "not-in-state"}


def approval_definition(mode: str, seats: list[str], quorum: int | None = None,
                        reject: bool = True) -> dict[str, Any]:
    approval: dict[str, Any] = {"mode": mode, "seats": seats}
    if quorum is not None:
        approval["quorum"] = quorum
    actions = [action("trinh", "tiep_nhan", "hoi_dong"),
               action("dong_y", "hoi_dong", "da_duyet", ["reviewer"], vote="approve")]
    if reject:
        actions.append(action("khong_dong_y", "hoi_dong", "tu_choi", ["reviewer"],
                              vote="reject"))
    actions.append(action("rut", ["tiep_nhan", "hoi_dong"], "tu_choi", ["applicant"]))
    return definition(states=[state("tiep_nhan", "start"),
                              state("hoi_dong", "approval", approval=approval),
                              state("da_duyet", "terminal", outcome="approved"),
                              state("tu_choi", "terminal", outcome="rejected")],
                      actions=actions)


def test_approval_states_need_an_approving_vote_and_a_reachable_quorum() -> None:
    document = approval_definition("quorum", ["reviewer", "reviewer"], quorum=3)
    document["actions"][1]["vote"] = "reject"
    document["actions"][0]["vote"] = "approve"
    assert problems(document) == {"/states/1": "vote", "/states/1/approval/quorum": "quorum",
                                  "/actions/0/vote": "vote"}


def test_shape_errors_point_into_the_definition() -> None:
    document = definition()
    document["states"][3]["sla"] = {"duration": "P5D"}
    document["actions"][0]["guard"] = {"$ref": "#/x", "pattern": "(a+)+$"}
    document["states"][1]["sla"] = {"duration": "P0D"}
    with pytest.raises(DefinitionError) as caught:
        check_shape(document)
    assert {e.pointer for e in caught.value.errors} == {"/states/3"}
    del document["states"][3]["sla"]
    with pytest.raises(DefinitionError) as caught:
        check_shape(document)
    assert {(e.pointer, e.keyword) for e in caught.value.errors} == {
        ("/actions/0/guard/$ref", "$ref"), ("/actions/0/guard/pattern", "pattern"),
        ("/states/1/sla/duration", "duration")}


# Random graphs: the reachability check agrees with a transitive closure.

graphs = st.integers(min_value=2, max_value=7).flatmap(lambda n: st.tuples(
    st.just(n),
    st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=14),
    st.sets(st.integers(1, n - 1), min_size=1, max_size=n - 1)))


def _closure(n: int, edges: set[tuple[int, int]]) -> list[list[bool]]:
    reach = [[i == j or (i, j) in edges for j in range(n)] for i in range(n)]
    for k, i, j in itertools.product(range(n), repeat=3):
        reach[i][j] = reach[i][j] or (reach[i][k] and reach[k][j])
    return reach


@settings(max_examples=300, deadline=None)
@given(graphs)
def test_reachability_matches_a_transitive_closure(graph: tuple[int, list[Any], set[int]]
                                                   ) -> None:
    n, raw_edges, terminals = graph
    edges = {(a, b) for a, b in raw_edges if a not in terminals}
    document = definition(
        states=[state(f"s{i}", "start" if i == 0 else "terminal" if i in terminals else "task",
                      **({"outcome": "completed"} if i in terminals else {}))
                for i in range(n)],
        actions=[action(f"a{k}", f"s{a}", f"s{b}") for k, (a, b) in enumerate(sorted(edges))]
        or [action("a0", "s0", "s0")])
    found = {e.pointer: e.keyword for e in graph_problems(document)}
    reach = _closure(n, edges)
    for i in range(n):
        expected = ("unreachable" if not reach[0][i]
                    else None if any(reach[i][t] for t in terminals) else "no-way-out")
        assert found.get(f"/states/{i}") == expected


# ---- taking actions ------------------------------------------------------------------------


def test_a_case_moves_and_fires_hooks() -> None:
    document = definition()
    hook = {"type": "sharing", "event": "ho-so.tham-dinh"}
    document["states"][1]["on_enter"] = [hook]
    document["states"][0]["on_leave"] = [{"type": "webhook", "url": "https://a.example/h"}]
    workflow = compile_workflow(check_shape(document))
    case, hooks = engine.open_case(workflow, {"ho_ten": "A"})
    assert (case.state, hooks) == ("tiep_nhan", ())
    outcome = engine.take(workflow, case, OFFICER, Request("tiep_nhan_ho_so"))
    assert (outcome.source, outcome.target, outcome.moved) == ("tiep_nhan", "tham_dinh", True)
    assert [(h.when, h.state) for h in outcome.hooks] == [("on_leave", "tiep_nhan"),
                                                          ("on_enter", "tham_dinh")]
    assert outcome.hooks[1].hook == hook


def test_refusals_in_order() -> None:
    document = definition()
    at_review = Case("tham_dinh", {"ho_ten": "A"})
    assert refusal(document, at_review, OFFICER, "khong_co").code == "unknown-action"
    assert refusal(document, at_review, OFFICER, "tiep_nhan_ho_so").status == 409
    assert refusal(document, at_review, OFFICER, "duyet").code == "not-allowed"
    assert refusal(document, at_review, APPLICANT, "yeu_cau_bo_sung").code == "not-allowed"
    refused = refusal(document, at_review, OFFICER, "yeu_cau_bo_sung", comment="  ")
    assert (refused.code, refused.errors[0].pointer) == ("comment-required", "/comment")
    moved = run(document, at_review, OFFICER, "yeu_cau_bo_sung", comment="Thiếu bản sao")
    assert moved.target == "cho_bo_sung"
    assert refusal(document, moved.case, OFFICER, "nop_bo_sung").code == "not-allowed"
    assert run(document, moved.case, APPLICANT, "nop_bo_sung").target == "tham_dinh"


def test_comment_none_refuses_a_comment() -> None:
    document = definition()
    document["actions"][0]["comment"] = "none"
    refused = refusal(document, Case("tiep_nhan", {}), OFFICER, "tiep_nhan_ho_so", comment="x")
    assert refused.code == "comment-not-allowed"


def test_action_fields_are_validated_and_join_the_case_data() -> None:
    document = definition()
    document["actions"][3]["fields"] = {
        "so_quyet_dinh": {"title": TEXT, "required": True,
                          "schema": {"type": "string", "pattern": "^[0-9]+/QĐ$"}},
        "ghi_chu": {"title": TEXT, "schema": {"type": "string", "maxLength": 5}}}
    case = Case("tham_dinh", {"ho_ten": "A"})
    refused = refusal(document, case, REVIEWER, "duyet", fields={"ghi_chu": "quá dài"})
    assert refused.code == "fields-invalid"
    assert {(e.pointer, e.keyword) for e in refused.errors} == {
        ("/fields/so_quyet_dinh", "required"), ("/fields/ghi_chu", "maxLength")}
    refused = refusal(document, case, REVIEWER, "duyet", fields={"so_quyet_dinh": "12/QĐ",
                                                                  "la": 1})
    assert [(e.pointer, e.keyword) for e in refused.errors] == [("/fields/la", "unknown-field")]
    outcome = run(document, case, REVIEWER, "duyet", fields={"so_quyet_dinh": "12/QĐ"})
    assert outcome.case.data == {"ho_ten": "A", "so_quyet_dinh": "12/QĐ"}
    assert outcome.changes == {"so_quyet_dinh": "12/QĐ"}


def test_guards_see_the_data_with_the_actions_own_fields() -> None:
    document = definition()
    document["actions"][3]["fields"] = {"ket_qua": {"title": TEXT,
                                                    "schema": {"enum": ["dat", "khong_dat"]}}}
    document["actions"][3]["guard"] = {
        "required": ["ket_qua"], "properties": {"ket_qua": {"const": "dat"},
                                                "so_tien": {"maximum": 100}}}
    document["actions"][3]["guard_message"] = {"vi": "Chưa đạt.", "en": "Not passed."}
    case = Case("tham_dinh", {"so_tien": 50})
    refused = refusal(document, case, REVIEWER, "duyet", fields={"ket_qua": "khong_dat"})
    assert (refused.code, refused.en, refused.vi) == ("guard-failed", "Not passed.", "Chưa đạt.")
    assert refused.errors[0].pointer == "/data/ket_qua"
    too_much = Case("tham_dinh", {"so_tien": 500})
    assert refusal(document, too_much, REVIEWER, "duyet",
                   fields={"ket_qua": "dat"}).code == "guard-failed"
    assert run(document, case, REVIEWER, "duyet", fields={"ket_qua": "dat"}).moved


def test_signature_blocks_until_signed_and_only_the_signer_role_signs() -> None:
    document = definition()
    document["actions"][3]["roles"] = ["reviewer", "officer"]
    document["actions"][3]["signature"] = {"required": True, "role": "reviewer"}
    case = Case("tham_dinh", {})
    refused = refusal(document, case, REVIEWER, "duyet")
    assert (refused.status, refused.code) == (428, "signature-required")
    assert refusal(document, case, OFFICER, "duyet", signed=True).code == "not-allowed"
    assert run(document, case, REVIEWER, "duyet", signed=True).target == "da_duyet"


def test_jurisdiction_a_role_held_higher_up_covers_lower_steps() -> None:
    document = definition()
    document["actions"][3]["at"] = "parent"
    case = Case("tham_dinh", {})
    assert refusal(document, case, REVIEWER, "duyet").code == "not-allowed"
    province = Actor("tinh", {"reviewer": engine.jurisdictions_up_to("province")})
    assert run(document, case, province, "duyet").moved
    assert run(document, case, province, "tu_choi").moved


def test_claim_states_let_only_the_claimant_act() -> None:
    document = definition()
    document["states"][1]["assignment"] = "claim"
    workflow = compile_workflow(check_shape(document))
    case = Case("tham_dinh", {})
    other = Actor("can-bo-2", {"officer": frozenset({"case"})})
    assert refusal(document, case, OFFICER, "yeu_cau_bo_sung", comment="x").code == "not-claimed"
    assert engine.available(workflow, case, OFFICER) == []
    claimed = engine.claim(case, OFFICER, workflow)
    assert [a.name for a in engine.available(workflow, claimed, OFFICER)] == ["yeu_cau_bo_sung"]
    with pytest.raises(Refused) as caught:
        engine.claim(claimed, other, workflow)
    assert caught.value.code == "already-claimed"
    assert refusal(document, claimed, other, "yeu_cau_bo_sung", comment="x").code == (
        "not-claimed")
    assert run(document, claimed, OFFICER, "yeu_cau_bo_sung", comment="x").moved
    given_away = engine.assign(claimed, other, workflow)
    assert run(document, given_away, other, "yeu_cau_bo_sung", comment="x").moved
    with pytest.raises(Refused) as caught:
        engine.assign(case, APPLICANT, workflow)
    assert caught.value.code == "assignee-not-eligible"
    with pytest.raises(Refused) as caught:
        engine.claim(case, APPLICANT, workflow)
    assert caught.value.code == "not-allowed"
    assert engine.release(claimed).assignee is None


def test_escalation_lets_the_parents_role_act_and_reassignment_releases_the_claim() -> None:
    document = definition()
    document["states"][1]["assignment"] = "claim"
    workflow = compile_workflow(check_shape(document))
    claimed = engine.claim(Case("tham_dinh", {}), OFFICER, workflow)
    chief = Actor("pho-chu-tich", {"tenant_admin": engine.jurisdictions_up_to("parent")})
    assert refusal(document, claimed, chief, "duyet").code == "not-allowed"
    escalated = engine.breach(claimed, {"type": "escalate", "role": "tenant_admin"},
                              whole_case=False)
    assert escalated.assignee == OFFICER.id
    assert run(document, escalated, chief, "duyet").target == "da_duyet"
    moved = run(document, escalated, chief, "yeu_cau_bo_sung", comment="x").case
    assert moved.extra == ()
    for_the_case = engine.breach(claimed, {"type": "escalate", "role": "tenant_admin"},
                                 whole_case=True)
    moved = run(document, for_the_case, chief, "yeu_cau_bo_sung", comment="x").case
    assert refusal(document, moved, chief, "nop_bo_sung").code == "not-allowed"
    assert run(document, Case("tham_dinh", {}, extra=moved.extra), chief, "duyet").moved
    local_admin = Actor("admin-xa", {"tenant_admin": frozenset({"case"})})
    assert refusal(document, escalated, local_admin, "duyet").code == "not-allowed"
    reassigned = engine.breach(claimed, {"type": "reassign", "role": "reviewer"},
                               whole_case=False)
    assert reassigned.assignee is None
    assert run(document, reassigned, REVIEWER, "yeu_cau_bo_sung", comment="x").moved
    assert engine.breach(claimed, {"type": "notify", "roles": ["x"]},
                         whole_case=False) == claimed


# ---- parallel approval ---------------------------------------------------------------------


def reviewers(count: int) -> list[Actor]:
    return [Actor(f"r{i}", {"reviewer": frozenset({"case"})}) for i in range(count)]


def test_quorum_two_of_three() -> None:
    document = approval_definition("quorum", ["reviewer"] * 3, quorum=2)
    workflow = compile_workflow(check_shape(document))
    first, second, third = reviewers(3)
    case = Case("hoi_dong", {})
    outcome = engine.take(workflow, case, first, Request("dong_y"))
    assert (outcome.moved, outcome.hooks, outcome.vote) == (
        False, (), engine.Vote(0, "reviewer", "r0", "approve"))
    with pytest.raises(Refused) as caught:
        engine.take(workflow, outcome.case, first, Request("khong_dong_y"))
    assert caught.value.code == "already-voted"
    outcome = engine.take(workflow, outcome.case, second, Request("khong_dong_y"))
    assert not outcome.moved
    assert [a.name for a in engine.available(workflow, outcome.case, third)] == [
        "dong_y", "khong_dong_y"]
    outcome = engine.take(workflow, outcome.case, third, Request("dong_y"))
    assert (outcome.moved, outcome.target, outcome.case.votes) == (True, "da_duyet", ())


def test_all_mode_seats_are_roles_and_one_person_fills_one_seat() -> None:
    document = approval_definition("all", ["reviewer", "tenant_admin"])
    document["actions"][1]["roles"] = document["actions"][2]["roles"] = ["reviewer",
                                                                         "tenant_admin"]
    workflow = compile_workflow(check_shape(document))
    both = Actor("ca-hai", {"reviewer": frozenset({"case"}), "tenant_admin": frozenset({"case"})})
    case = Case("hoi_dong", {})
    outcome = engine.take(workflow, case, both, Request("dong_y", seat="tenant_admin"))
    assert outcome.vote is not None and outcome.vote.role == "tenant_admin"
    with pytest.raises(Refused):
        engine.take(workflow, outcome.case, both, Request("dong_y"))
    with pytest.raises(Refused) as caught:
        engine.take(workflow, outcome.case, Actor("khac", {"tenant_admin": frozenset({"case"})}),
                    Request("dong_y"))
    assert caught.value.code == "not-allowed"  # the only tenant_admin seat is taken
    reviewer = reviewers(1)[0]
    assert engine.take(workflow, outcome.case, reviewer, Request("dong_y")).target == "da_duyet"
    assert engine.take(workflow, case, reviewer, Request("khong_dong_y")).target == "tu_choi"


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["all", "any", "quorum"]), st.integers(1, 6), st.data())
def test_votes_decide_at_the_first_decisive_vote(mode: str, seats: int,
                                                 data: st.DataObject) -> None:
    quorum = data.draw(st.integers(1, seats)) if mode == "quorum" else None
    needed = {"all": seats, "any": 1}.get(mode, quorum or 0)
    votes = data.draw(st.lists(st.booleans(), min_size=seats, max_size=seats))
    workflow = compile_workflow(check_shape(
        approval_definition(mode, ["reviewer"] * seats, quorum=quorum)))
    case = Case("hoi_dong", {})
    for count, (voter, approve) in enumerate(zip(reviewers(seats), votes, strict=True), 1):
        outcome = engine.take(workflow, case, voter,
                              Request("dong_y" if approve else "khong_dong_y"))
        approvals = sum(votes[:count])
        rejections = count - approvals
        if approvals >= needed:
            assert outcome.target == "da_duyet"
            return
        if rejections > seats - needed:
            assert outcome.target == "tu_choi"
            return
        assert not outcome.moved and len(outcome.case.votes) == count
        case = outcome.case
    pytest.fail("every seat voted and nothing was decided")


def test_applicant_may_withdraw_during_the_vote() -> None:
    workflow = compile_workflow(check_shape(approval_definition("any", ["reviewer"])))
    assert engine.take(workflow, Case("hoi_dong", {}), APPLICANT,
                       Request("rut")).target == "tu_choi"


def test_simulation_stops_at_the_first_refusal() -> None:
    workflow = compile_workflow(check_shape(definition()))
    steps = [engine.Step(OFFICER, Request("tiep_nhan_ho_so")),
             engine.Step(OFFICER, Request("yeu_cau_bo_sung", comment="x")),
             engine.Step(APPLICANT, Request("nop_bo_sung")),
             engine.Step(OFFICER, Request("duyet")),
             engine.Step(REVIEWER, Request("duyet"))]
    result = engine.simulate(workflow, {}, steps)
    assert result.path == ["tiep_nhan", "tham_dinh", "cho_bo_sung", "tham_dinh"]
    assert result.refused is not None and result.refused[0] == 3
    assert result.refused[1].code == "not-allowed"
    done = engine.simulate(workflow, {}, steps[:3] + steps[4:])
    assert (done.state, done.refused) == ("da_duyet", None)


def test_compiled_workflows_are_shared_and_definitions_unchanged() -> None:
    document = definition()
    before = copy.deepcopy(document)
    assert compile_workflow(document) is compile_workflow(copy.deepcopy(document))
    assert document == before
