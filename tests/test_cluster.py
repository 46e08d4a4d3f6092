"""Two API processes and two workers on one PostgreSQL (``benchmarks/cluster.py``): a
publication through one API is live on the other at once, and neither a rolling restart of
every process nor an expand/contract migration fails a single request of a steady load.

The figures of a full run (and the scaling ratio) are in ``benchmarks/RESULTS.md``; this test
asserts outcomes only, never timings."""

from __future__ import annotations

from pathlib import Path

from benchmarks import cluster


def test_rolling_restart_and_expand_contract_under_load_fail_nothing(tmp_path: Path) -> None:
    report = cluster.prove(tmp_path, drain_seconds=0.5, settle=1.5, seed=5_000)

    assert report["publication"] == {
        "form_published_on_api_1": True, "workflow_published_on_api_1": True,
        "submitted_on_api_2": 201, "case_opened_on_api_2": True,
        "version_2_published_on_api_2": True, "api_1_refuses_v1_data_at_once": True}

    restart = report["rolling_restart"]
    assert [step["process"] for step in restart["steps"]] == [
        "api-1", "api-2", "worker-1", "worker-2"]
    assert restart["failures"] == {} and restart["failed"] == 0
    assert restart["bad_gateway"] == restart["no_backend"] == 0
    assert restart["by_op"]["submit"] > 0 and restart["by_op"]["case"] > 0

    migration = report["expand_contract"]
    assert list(migration["steps_s"]) == ["cases", "e1_expand", "c1_contract"]
    assert migration["steps_s"]["cases"] > 5_000
    assert migration["failures"] == {} and migration["failed"] == 0
    assert [r["status"] for r in migration["readiness_after"]] == ["ready", "ready"]
    assert all(r["checks"]["schema"].startswith("ahead at c1_contract")
               for r in migration["readiness_after"])
    assert set(report["per_backend"]) == {"api-1", "api-2"}
