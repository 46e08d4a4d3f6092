"""The sharding rule (docs/sharding.md): every table is distributed by ``tenant_id``, or a
declared reference or local-only table. ``scripts/check_sharding.py`` checks it on the models
and on a freshly migrated PostgreSQL database, and fails on a table that breaks it."""

from __future__ import annotations

import asyncio
import importlib.util
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from sqlalchemy import (
    Column,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    Uuid,
    func,
)
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

import app.models  # noqa: F401
from app.core.db import NAMING_CONVENTION, Base
from tests.conftest import Backend, pg_admin

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "check_sharding.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_sharding", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return module


sharding = _load()


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, check=False)


# ---- the project's schema keeps the rule ------------------------------------------------


def test_models_keep_the_rule() -> None:
    result = _run()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "VIOLATION" not in result.stdout
    for name in Base.metadata.tables:
        assert f"\n{name} " in result.stdout, name


def test_migrated_database_keeps_the_rule(postgresql_backend: Backend) -> None:
    result = _run("--database-url", postgresql_backend.superuser_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "database: " in result.stdout and "0 violations" in result.stdout
    assert "alembic_version" in result.stdout  # the live catalog was read, not only the models


def test_markdown_lists_every_table() -> None:
    result = _run("--markdown")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("| table | class | primary key | foreign keys |")
    for name in Base.metadata.tables:
        assert f"| `{name}` |" in result.stdout, name


def test_declarations_and_exceptions_give_reasons() -> None:
    for declared in sharding.DECLARED.values():
        assert declared.reason.strip()
    for exception in sharding.KNOWN_EXCEPTIONS.values():
        assert exception.reason.strip() and exception.remedy.strip()


def test_citus_statements_come_after_their_foreign_keys_targets() -> None:
    schema = sharding.metadata_schema(Base.metadata)
    classes = sharding.classify(schema, sharding.DECLARED)
    statements = sharding.citus_sql(schema, classes, "principals").splitlines()
    order = [line.split("'")[1] for line in statements]
    assert sorted(order) == sorted(n for n, k in classes.items() if k != sharding.Kind.LOCAL)
    assert statements[0] == "SELECT create_reference_table('tenants');"
    for position, name in enumerate(order):
        for fk in schema.tables[name].foreign_keys:
            assert fk.target == name or order.index(fk.target) < position, (name, fk.name)


# ---- the checker fails on a table that breaks the rule ----------------------------------


def _broken() -> MetaData:
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    Table("tenants", metadata, Column("id", Uuid, primary_key=True))
    parents = Table("parents", metadata,
                    Column("tenant_id", Uuid, ForeignKey("tenants.id"), primary_key=True),
                    Column("id", Uuid, primary_key=True),
                    Column("code", String(16)), Column("slug", String(16), unique=True),
                    Index("uq_parents_code", "code", unique=True))
    Index("uq_parents_lower_code", func.lower(parents.c.code), unique=True)
    Table("keyless", metadata, Column("id", Uuid, primary_key=True),
          Column("tenant_id", Uuid, nullable=False))
    Table("children", metadata,
          Column("tenant_id", Uuid, primary_key=True), Column("id", Uuid, primary_key=True),
          Column("parent_tenant_id", Uuid), Column("parent_id", Uuid),
          ForeignKeyConstraint(["parent_tenant_id", "parent_id"],
                               ["parents.tenant_id", "parents.id"]))
    Table("siblings", metadata,
          Column("tenant_id", Uuid, primary_key=True), Column("id", Uuid, primary_key=True),
          Column("parent_id", Uuid), Column("name", String(16)),
          ForeignKeyConstraint(["tenant_id", "parent_id"], ["parents.tenant_id", "parents.id"]),
          UniqueConstraint("tenant_id", "name"))
    Table("settings", metadata, Column("key", String(32), primary_key=True))
    Table("codes", metadata, Column("code", String(8), primary_key=True),
          Column("tenant_id", Uuid), Column("parent_id", Uuid),
          ForeignKeyConstraint(["tenant_id", "parent_id"], ["parents.tenant_id", "parents.id"]))
    return metadata


DECLARED = {
    "tenants": sharding.Declared(sharding.Kind.REFERENCE, "the tree"),
    "codes": sharding.Declared(sharding.Kind.REFERENCE, "a code list"),
    "gone": sharding.Declared(sharding.Kind.REFERENCE, "dropped long ago"),
}
STALE = {("siblings", "uq_siblings_nothing"): sharding.KnownException("was", "fixed")}
EXPECTED = [
    "distributed table keyless: primary key (id) does not include tenant_id",
    "distributed table parents: unique index uq_parents_code (code) does not include tenant_id",
    "distributed table parents: unique constraint uq_parents_slug (slug) does not include "
    "tenant_id",
    "distributed table parents: unique index uq_parents_lower_code (<expression>) does not "
    "include tenant_id",
    "distributed table children: foreign key fk_children_parent_tenant_id_parent_id_parents "
    "(parent_tenant_id, parent_id) -> parents does not map tenant_id to parents.tenant_id",
    "table settings has no tenant_id and is in neither the reference nor the local-only list",
    "reference table codes: foreign key fk_codes_tenant_id_parent_id_parents refers to "
    "distributed table parents",
    "declared reference table gone does not exist",
    "known exception siblings.uq_siblings_nothing no longer matches a violation",
]


def _assert_reports_each(violations: list[str]) -> None:
    for expected in EXPECTED:
        assert any(expected in v for v in violations), (expected, violations)
    assert len(violations) == len(EXPECTED), violations
    assert not any("siblings:" in v for v in violations), violations


def test_checker_reports_each_broken_table() -> None:
    report = sharding.check(sharding.metadata_schema(_broken()), DECLARED, STALE)
    _assert_reports_each(report.violations)
    assert report.classes["siblings"] == sharding.Kind.DISTRIBUTED
    assert "settings" not in report.classes


def test_a_known_exception_excuses_only_its_constraint() -> None:
    excused = {("parents", "uq_parents_code"): sharding.KnownException("why", "how")}
    report = sharding.check(sharding.metadata_schema(_broken()), DECLARED, excused)
    assert not any("uq_parents_code" in v for v in report.violations)
    assert any("uq_parents_code" in e for e in report.excused)
    assert any("uq_parents_slug" in v for v in report.violations)


def test_distribution_columns_must_share_one_type() -> None:
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    Table("a", metadata, Column("tenant_id", Uuid, primary_key=True))
    Table("b", metadata, Column("tenant_id", String(36), primary_key=True))
    report = sharding.check(sharding.metadata_schema(metadata), {}, {})
    assert report.violations == [
        "distributed tables disagree on the type of tenant_id (UUID, VARCHAR(36)); "
        "co-located tables need one type"]


def test_tenant_id_should_lead_the_primary_key() -> None:
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    Table("late", metadata, Column("id", Uuid, primary_key=True),
          Column("tenant_id", Uuid, primary_key=True))
    Table("keyless", metadata, Column("tenant_id", Uuid))
    report = sharding.check(sharding.metadata_schema(metadata), {}, {})
    assert report.violations == ["distributed table keyless has no primary key"]
    assert report.warnings == ["late: tenant_id is not the first column of the primary key, "
                               "so its index does not serve tenant_id = X"]


async def _create(url: str, metadata: MetaData) -> None:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
    finally:
        await engine.dispose()


@pytest.fixture
def broken_database(postgresql_backend: Backend) -> Iterator[str]:
    """A scratch database beside the suite's, holding the broken tables."""
    url = make_url(postgresql_backend.superuser_url)
    name = f"{url.database}_shard"
    asyncio.run(pg_admin(f'CREATE DATABASE "{name}"'))
    scratch = url.set(database=name).render_as_string(hide_password=False)
    try:
        asyncio.run(_create(scratch, _broken()))
        yield scratch
    finally:
        asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_catalog_reader_reports_each_broken_table(broken_database: str) -> None:
    schema = asyncio.run(sharding.database_schema(broken_database))
    report = sharding.check(schema, DECLARED, STALE)
    _assert_reports_each(report.violations)
    from_models = sharding.check(sharding.metadata_schema(_broken()), DECLARED, STALE)
    in_models = [v.replace("in the database", "in the models") for v in report.violations]
    assert sorted(in_models) == sorted(from_models.violations)


def test_script_fails_on_a_database_that_breaks_the_rule(broken_database: str) -> None:
    result = _run("--database-url", broken_database)
    assert result.returncode == 1, result.stdout + result.stderr
    for name in ("keyless", "uq_parents_code", "uq_parents_slug",
                 "fk_children_parent_tenant_id_parent_id_parents", "settings"):
        assert "VIOLATION [database]" in result.stdout and name in result.stdout, name
    assert "FAILED" in result.stdout
