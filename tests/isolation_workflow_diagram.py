"""Cross-tenant case for drawing a workflow diagram (``POST .../workflows/diagram``): nothing
of the victim is read, but the route is tenant-scoped and needs ``workflows:read`` there."""

from __future__ import annotations

from tests.isolation import Attack, World, isolation_case
from tests.isolation_workflows import WORKFLOWS, workflow


@isolation_case("POST", WORKFLOWS + "/diagram")
def draw_workflow(world: World, victim: str) -> Attack:
    return Attack("POST", WORKFLOWS.format(tenant=victim) + "/diagram",
                  json=workflow("vw-pub", "vf-pub"))
