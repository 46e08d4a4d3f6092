"""Cross-tenant cases for workflow definitions, cases and the inbox.

Each victim tenant holds three workflows (see :func:`victim_workflows`), bound to the victim's
forms of :mod:`tests.isolation_forms`: ``vw-pub`` (version 1 published, version 2 a draft;
each case it opens queues a webhook delivery),
``vw-old`` (version 1 published) and ``vw-draft`` (only a draft); and four open cases of
``vw-pub``, one for each request that changes a case, so the owner's control run finds each
as its request needs it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.isolation import Attack, World, isolation_case
from tests.isolation_forms import valid_data
from tests.platform import Credentials, new_code

WORKFLOWS = "/api/v1/tenants/{tenant}/workflows"
TEXT = {"vi": "Bước", "en": "Step"}


# Where ``vw-pub`` tells of each case it opens: a loopback address, which the worker refuses
# by default, so each victim holds dead deliveries (see tests/isolation_deliveries.py).
HOOK = {"type": "webhook", "url": "http://127.0.0.1:9/nentang-isolation"}


def workflow(key: str, form: str) -> dict[str, Any]:
    """A small complaint process: receive, handle, close."""
    start: dict[str, Any] = {"name": "tiep_nhan", "type": "start", "title": TEXT}
    if key == "vw-pub":
        start["on_enter"] = [HOOK]
    return {
        "kind": "Workflow", "key": key, "title": TEXT, "form": form,
        "sla": {"duration": "P30D", "days": "calendar"},
        "states": [start,
                   {"name": "xu_ly", "type": "task", "title": TEXT},
                   {"name": "xong", "type": "terminal", "title": TEXT, "outcome": "completed"}],
        "actions": [{"name": "nhan", "title": TEXT, "from": "tiep_nhan", "to": "xu_ly",
                     "roles": ["officer", "tenant_admin"]},
                    {"name": "ket_thuc", "title": TEXT, "from": "xu_ly", "to": "xong",
                     "roles": ["reviewer"], "guard": {"required": ["tieu_de"]}},
                    {"name": "ky_duyet", "title": TEXT, "from": "xu_ly", "to": "xong",
                     "roles": ["tenant_admin"],
                     "signature": {"required": True, "role": "tenant_admin",
                                   "receipt": True}}],
    }


async def victim_workflows(http: httpx.AsyncClient, tenant: str,
                           admin: Credentials) -> dict[str, str]:
    base = f"/api/v1/tenants/{tenant}/workflows"

    async def ok(method: str, url: str, body: Any = None) -> None:
        response = await http.request(method, base + url, json=body, headers=admin.headers)
        assert response.status_code < 300, response.text

    for key, form in (("vw-pub", "vf-pub"), ("vw-old", "vf-old"), ("vw-draft", "vf-pub")):
        await ok("POST", "", workflow(key, form))
    for key in ("vw-pub", "vw-old"):
        await ok("POST", f"/{key}/versions/1/publish")
    await ok("POST", "/vw-pub/versions")
    made = {}
    for name in ("case_id", "acting_case_id", "assigned_case_id", "claimed_case_id"):
        response = await http.post(f"/api/v1/tenants/{tenant}/submissions",
                                   headers=admin.headers,
                                   json={"form": "vf-pub", "data": valid_data()})
        assert response.status_code == 201 and response.json()["case"], response.text
        made[name] = response.json()["case"]
    return made


def _workflows(victim: str, suffix: str = "") -> str:
    return WORKFLOWS.format(tenant=victim) + suffix


@isolation_case("POST", WORKFLOWS)
def create_workflow(world: World, victim: str) -> Attack:
    return Attack("POST", _workflows(victim), json=workflow(new_code("w").lower(), "vf-pub"))


@isolation_case("GET", WORKFLOWS)
def list_workflows(world: World, victim: str) -> Attack:
    return Attack("GET", _workflows(victim))


@isolation_case("GET", WORKFLOWS + "/{key}")
def read_workflow(world: World, victim: str) -> Attack:
    return Attack("GET", _workflows(victim, "/vw-pub"))


@isolation_case("GET", WORKFLOWS + "/{key}/versions")
def list_workflow_versions(world: World, victim: str) -> Attack:
    return Attack("GET", _workflows(victim, "/vw-pub/versions"))


@isolation_case("POST", WORKFLOWS + "/{key}/versions")
def start_workflow_version(world: World, victim: str) -> Attack:
    return Attack("POST", _workflows(victim, "/vw-old/versions"))


@isolation_case("GET", WORKFLOWS + "/{key}/versions/{number}")
def read_workflow_version(world: World, victim: str) -> Attack:
    return Attack("GET", _workflows(victim, "/vw-pub/versions/2"))


@isolation_case("PUT", WORKFLOWS + "/{key}/versions/{number}")
def replace_workflow_draft(world: World, victim: str) -> Attack:
    return Attack("PUT", _workflows(victim, "/vw-draft/versions/1"),
                  json=workflow("vw-draft", "vf-pub"))


@isolation_case("DELETE", WORKFLOWS + "/{key}/versions/{number}")
def discard_workflow_draft(world: World, victim: str) -> Attack:
    return Attack("DELETE", _workflows(victim, "/vw-draft/versions/1"))


@isolation_case("POST", WORKFLOWS + "/{key}/versions/{number}/publish")
def publish_workflow_version(world: World, victim: str) -> Attack:
    return Attack("POST", _workflows(victim, "/vw-pub/versions/2/publish"))


@isolation_case("POST", WORKFLOWS + "/{key}/versions/{number}/deprecate")
def deprecate_workflow_version(world: World, victim: str) -> Attack:
    return Attack("POST", _workflows(victim, "/vw-old/versions/1/deprecate"))


@isolation_case("GET", WORKFLOWS + "/{key}/versions/{a}/diff/{b}")
def diff_workflow_versions(world: World, victim: str) -> Attack:
    return Attack("GET", _workflows(victim, "/vw-pub/versions/1/diff/2"))


@isolation_case("POST", WORKFLOWS + "/{key}/simulate")
def simulate_workflow(world: World, victim: str) -> Attack:
    actor = {"id": "x", "roles": ["officer"]}
    return Attack("POST", _workflows(victim, "/vw-pub/simulate"),
                  json={"data": valid_data(), "steps": [{"action": "nhan", "actor": actor}]})


CASES = "/api/v1/tenants/{tenant}/cases"


def _case(world: World, victim: str, which: str, suffix: str = "") -> str:
    return CASES.format(tenant=victim) + "/" + world.victims[victim].forms[which] + suffix


@isolation_case("GET", CASES)
def list_cases(world: World, victim: str) -> Attack:
    return Attack("GET", CASES.format(tenant=victim))


@isolation_case("GET", CASES + "/{case_id}")
def read_case(world: World, victim: str) -> Attack:
    return Attack("GET", _case(world, victim, "case_id"))


@isolation_case("GET", CASES + "/{case_id}/history")
def read_case_history(world: World, victim: str) -> Attack:
    return Attack("GET", _case(world, victim, "case_id", "/history"))


@isolation_case("POST", CASES + "/{case_id}/actions/{action}")
def take_case_action(world: World, victim: str) -> Attack:
    case_id = world.victims[victim].forms["acting_case_id"]
    return Attack("POST", _case(world, victim, "acting_case_id", "/actions/nhan"), json={},
                  headers={"If-Match": f'"{case_id}.1"'})


@isolation_case("POST", CASES + "/{case_id}/claim")
def claim_case(world: World, victim: str) -> Attack:
    return Attack("POST", _case(world, victim, "claimed_case_id", "/claim"))


@isolation_case("POST", CASES + "/{case_id}/release")
def release_case(world: World, victim: str) -> Attack:
    return Attack("POST", _case(world, victim, "claimed_case_id", "/release"))


@isolation_case("POST", CASES + "/{case_id}/assign")
def assign_case(world: World, victim: str) -> Attack:
    return Attack("POST", _case(world, victim, "assigned_case_id", "/assign"),
                  json={"assignee": world.victims[victim].user_id})


def _no_task_of(response: httpx.Response, victim: str) -> None:
    assert response.status_code == 200, response.text
    assert victim not in {t["tenant"] for t in response.json()["items"]}


@isolation_case("GET", "/api/v1/me/tasks")
def my_tasks(world: World, victim: str) -> Attack:
    return Attack("GET", "/api/v1/me/tasks", params={"limit": "200"}, check=_no_task_of)


@isolation_case("POST", WORKFLOWS + "/{key}/migrate")
def migrate_cases(world: World, victim: str) -> Attack:
    return Attack("POST", _workflows(victim, "/vw-pub/migrate"),
                  json={"to_version": 1, "dry_run": False})


DELEGATIONS = "/api/v1/me/delegations"


def _period() -> dict[str, str]:
    now = datetime.now(UTC)
    return {"starts_at": now.isoformat(), "ends_at": (now + timedelta(days=3)).isoformat()}


async def delegation(http: httpx.AsyncClient, by: Credentials, delegate: str) -> str:
    response = await http.post(DELEGATIONS, headers=by.headers,
                               json={"delegate": delegate, **_period()})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _refused_as_invisible(response: httpx.Response, victim: str) -> None:
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["pointer"] == "/delegate"


@isolation_case("POST", DELEGATIONS)
def delegate_to_victim(world: World, victim: str) -> Attack:
    return Attack("POST", DELEGATIONS, json={"delegate": world.victims[victim].user_id,
                                             **_period()}, check=_refused_as_invisible)


def _lists_no_delegation_of(world: World) -> Any:
    def check(response: httpx.Response, victim: str) -> None:
        assert response.status_code == 200, response.text
        ids = {d["id"] for d in response.json()}
        assert world.victims[victim].forms["delegation_id"] not in ids
    return check


@isolation_case("GET", DELEGATIONS)
def list_delegations(world: World, victim: str) -> Attack:
    return Attack("GET", DELEGATIONS, check=_lists_no_delegation_of(world))


@isolation_case("POST", DELEGATIONS + "/{delegation_id}/end")
def end_victims_delegation(world: World, victim: str) -> Attack:
    return Attack("POST", f"{DELEGATIONS}/{world.victims[victim].forms['delegation_id']}/end")
