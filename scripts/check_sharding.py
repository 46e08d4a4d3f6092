"""Check that the schema can be distributed by ``tenant_id`` (Citus) as it stands.

Every table is one of three classes:

* **distributed** by ``tenant_id``: it has a ``tenant_id`` column, its primary key and every
  unique constraint or unique index include it, and every foreign key to another distributed
  table maps ``tenant_id`` to the target's ``tenant_id`` (so the two rows share a shard);
* **reference**: declared in :data:`DECLARED` with a reason; replicated to every node, so
  distributed tables may refer to it, but it may not refer to a distributed table;
* **local-only**: declared in :data:`DECLARED`; stays on the coordinator, and no
  distributed table refers to it nor it to one.

A table with no ``tenant_id`` that is not declared, a declared table that no longer exists and
a known exception that no longer applies are errors too. The schema is read from the models
(``app.models``) and, with ``--database-url``, also from the migrated database's catalog.
See ``docs/sharding.md``.

    python scripts/check_sharding.py [--database-url URL] [--markdown | --sql]

Exit status: 0 when the schema keeps the rule, 1 when it does not.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from sqlalchemy import Column, ForeignKeyConstraint, MetaData, UniqueConstraint, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

ROOT = Path(__file__).resolve().parents[1]
DISTRIBUTION_COLUMN = "tenant_id"


class Kind(StrEnum):
    DISTRIBUTED = "distributed"
    REFERENCE = "reference"
    LOCAL = "local-only"


@dataclass(frozen=True)
class Declared:
    kind: Kind
    reason: str
    in_models: bool = True  # False: only the migrated database has it (not a model)


@dataclass(frozen=True)
class KnownException:
    reason: str
    remedy: str


_DEFINITION = ("an inherited definition: rows of descendants pin {what} of an ancestor through "
               "a foreign key from another tenant's rows, which only a reference table allows; "
               "few rows, written when a definition is edited or published")

DECLARED: dict[str, Declared] = {
    "tenants": Declared(Kind.REFERENCE, "the tenant tree: every row names a tenant and every "
                        "scope, policy and subtree query reads it; about 3,400 rows, written "
                        "when the tree changes"),
    "forms": Declared(Kind.REFERENCE, _DEFINITION.format(what="a form")),
    "form_versions": Declared(Kind.REFERENCE, _DEFINITION.format(
        what="a form version (submissions.form_tenant_id)")),
    "workflows": Declared(Kind.REFERENCE, _DEFINITION.format(what="a workflow")),
    "workflow_versions": Declared(Kind.REFERENCE, _DEFINITION.format(
        what="a workflow version (cases.workflow_tenant_id)")),
    "roles": Declared(Kind.REFERENCE, _DEFINITION.format(
        what="a custom role (role_grants.role_tenant_id)")),
    "alembic_version": Declared(Kind.LOCAL, "Alembic's revision marker; migrations run on the "
                                "coordinator, which propagates DDL to the workers",
                                in_models=False),
}

_CREDENTIAL = ("looked up by its {what} alone (the caller does not name a tenant), so the key "
               "is global; under Citus a unique key must include tenant_id and the lookup "
               "would fan out to every shard{lock}")
_IN_CREDENTIAL = ("carry the tenant in the {what} (for example '<tenant id>.<secret>'), look it "
                  "up with tenant_id = X, and make the key ({key})")

# Existing constraints that break the rule, each with why it is there and how to remove it.
# Remove an entry with its fix: an entry that no longer matches a violation fails the check.
KNOWN_EXCEPTIONS: dict[tuple[str, str], KnownException] = {
    ("api_clients", "uq_api_clients_client_id"): KnownException(
        _CREDENTIAL.format(what="client_id (client credentials)", lock=""),
        "a small reference table client_id -> tenant_id written when a client is created, "
        "then unique (tenant_id, client_id) and a single-shard lookup"),
    ("authorization_codes", "uq_authorization_codes_code_hash"): KnownException(
        _CREDENTIAL.format(what="code hash (token endpoint)", lock=""),
        _IN_CREDENTIAL.format(what="code", key="tenant_id, code_hash")),
    ("refresh_tokens", "uq_refresh_tokens_token_hash"): KnownException(
        _CREDENTIAL.format(what="token hash (token endpoint)",
                           lock=", and its SELECT ... FOR UPDATE is refused on many shards"),
        _IN_CREDENTIAL.format(what="token", key="tenant_id, token_hash")),
    ("login_flows", "uq_login_flows_state_hash"): KnownException(
        _CREDENTIAL.format(what="state hash (identity provider callback)",
                           lock=", and its SELECT ... FOR UPDATE is refused on many shards"),
        _IN_CREDENTIAL.format(what="state parameter", key="tenant_id, state_hash")),
    ("identity_providers", "uq_identity_providers_id"): KnownException(
        "a provider is found by its id alone when a federated login starts or returns",
        "unique (tenant_id, id); the login flow, which knows its tenant, passes tenant_id"),
    ("attachments", "uq_attachments_storage_key"): KnownException(
        "storage keys are random and the unique key guards against reuse platform-wide",
        "unique (tenant_id, storage_key): keys are 128-bit random, the storage refuses an "
        "existing key"),
}


@dataclass(frozen=True)
class ForeignKey:
    name: str
    columns: tuple[str, ...]
    target: str
    target_columns: tuple[str, ...]

    def keeps_tenant(self) -> bool:
        return (DISTRIBUTION_COLUMN, DISTRIBUTION_COLUMN) in zip(
            self.columns, self.target_columns, strict=True)


@dataclass(frozen=True)
class UniqueKey:
    name: str
    columns: tuple[str, ...]  # an expression is "<expression>"
    kind: str  # "unique constraint" or "unique index"


@dataclass
class TableShape:
    name: str
    columns: dict[str, str]  # name -> PostgreSQL type
    primary_key: tuple[str, ...] = ()
    foreign_keys: list[ForeignKey] = field(default_factory=list)
    unique_keys: list[UniqueKey] = field(default_factory=list)


@dataclass
class Schema:
    source: str  # "models" or "database"
    tables: dict[str, TableShape]


@dataclass
class Report:
    source: str
    classes: dict[str, Kind]
    violations: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    excused: list[str] = field(default_factory=list)


# ---- reading the schema ------------------------------------------------------------------


def metadata_schema(metadata: MetaData) -> Schema:
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    tables: dict[str, TableShape] = {}
    for table in metadata.sorted_tables:
        shape = TableShape(table.name,
                           {c.name: c.type.compile(dialect=dialect) for c in table.columns},
                           tuple(c.name for c in table.primary_key.columns))
        for constraint in table.constraints:
            if isinstance(constraint, ForeignKeyConstraint):
                shape.foreign_keys.append(ForeignKey(
                    _named(constraint.name), tuple(constraint.column_keys),
                    constraint.elements[0].column.table.name,
                    tuple(e.column.name for e in constraint.elements)))
            elif isinstance(constraint, UniqueConstraint):
                shape.unique_keys.append(UniqueKey(
                    _named(constraint.name), tuple(c.name for c in constraint.columns),
                    "unique constraint"))
        for index in table.indexes:
            if index.unique:
                names = tuple(e.name if isinstance(e, Column) else "<expression>"
                              for e in index.expressions)
                shape.unique_keys.append(UniqueKey(_named(index.name), names, "unique index"))
        tables[table.name] = shape
    return Schema("models", tables)


def _named(name: object) -> str:
    return str(name) if name else "<unnamed>"


def model_metadata() -> MetaData:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import app.models  # noqa: F401 (registers every table)
    from app.core.db import Base

    return Base.metadata


_TABLES = """
SELECT c.oid, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition"""
_COLUMNS = """
SELECT attrelid, attnum, attname, format_type(atttypid, atttypmod) FROM pg_attribute
WHERE attrelid = ANY(:oids) AND attnum > 0 AND NOT attisdropped"""
_CONSTRAINTS = """
SELECT conrelid, conname, contype::text, conkey, confrelid, confkey FROM pg_constraint
WHERE conrelid = ANY(:oids) AND contype IN ('p', 'u', 'f') ORDER BY conname"""
_UNIQUE_INDEXES = """
SELECT i.indrelid, ic.relname, i.indkey::int2[] FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid
WHERE i.indrelid = ANY(:oids) AND i.indisunique AND NOT EXISTS (
  SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid
  AND c.contype IN ('p', 'u', 'x'))
ORDER BY ic.relname"""


async def database_schema(url: str) -> Schema:
    """The tables of the database's current schema, from the catalog (what migrations made)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres") or parsed.drivername.startswith(
            "postgresql+psycopg"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    engine = create_async_engine(parsed, poolclass=NullPool, hide_parameters=True)
    try:
        async with engine.connect() as conn:
            names = {row[0]: row[1] for row in await conn.execute(text(_TABLES))}
            oids = {"oids": list(names)}
            columns: dict[int, dict[int, tuple[str, str]]] = {oid: {} for oid in names}
            for rel, num, name, type_ in await conn.execute(text(_COLUMNS), oids):
                columns[rel][num] = (name, type_)
            constraints = (await conn.execute(text(_CONSTRAINTS), oids)).all()
            indexes = (await conn.execute(text(_UNIQUE_INDEXES), oids)).all()
    finally:
        await engine.dispose()

    def cols(rel: int, nums: Iterable[int]) -> tuple[str, ...]:
        return tuple(columns[rel][n][0] if n else "<expression>" for n in nums)

    tables = {name: TableShape(name, {n: t for n, t in columns[oid].values()})
              for oid, name in names.items()}
    for rel, name, kind, key, target, target_key in constraints:
        shape = tables[names[rel]]
        if kind == "p":
            shape.primary_key = cols(rel, key)
        elif kind == "u":
            shape.unique_keys.append(UniqueKey(name, cols(rel, key), "unique constraint"))
        elif target in names:
            shape.foreign_keys.append(
                ForeignKey(name, cols(rel, key), names[target], cols(target, target_key)))
        else:  # a table of another schema: no class here, so never a valid target
            shape.foreign_keys.append(ForeignKey(name, cols(rel, key), f"<oid {target}>", ()))
    for rel, name, key in indexes:
        tables[names[rel]].unique_keys.append(UniqueKey(name, cols(rel, key), "unique index"))
    return Schema("database", tables)


# ---- checking ----------------------------------------------------------------------------


def classify(schema: Schema, declared: Mapping[str, Declared]) -> dict[str, Kind]:
    """Each table's class; a table with no tenant_id that is not declared has none."""
    classes: dict[str, Kind] = {}
    for name, table in schema.tables.items():
        if name in declared:
            classes[name] = declared[name].kind
        elif DISTRIBUTION_COLUMN in table.columns:
            classes[name] = Kind.DISTRIBUTED
    return classes


def check(schema: Schema, declared: Mapping[str, Declared] = DECLARED,
          exceptions: Mapping[tuple[str, str], KnownException] = KNOWN_EXCEPTIONS) -> Report:
    classes = classify(schema, declared)
    report = Report(schema.source, classes)
    found: list[tuple[str, str, str]] = []  # (table, constraint, message)

    for name, table in sorted(schema.tables.items()):
        kind = classes.get(name)
        if kind is None:
            found.append((name, "", f"table {name} has no {DISTRIBUTION_COLUMN} and is in "
                          "neither the reference nor the local-only list (DECLARED)"))
            continue
        if kind is Kind.DISTRIBUTED:
            found.extend(_distributed_problems(table, classes, report))
        else:
            found.extend((name, fk.name, f"{kind} table {name}: foreign key {fk.name} refers "
                          f"to distributed table {fk.target}")
                         for fk in table.foreign_keys if classes.get(fk.target) is Kind.DISTRIBUTED)

    used: set[tuple[str, str]] = set()
    for table_name, constraint, message in found:
        if (table_name, constraint) in exceptions:
            used.add((table_name, constraint))
            report.excused.append(message)
        else:
            report.violations.append(message)
    for key in sorted(set(exceptions) - used):
        report.violations.append(f"known exception {key[0]}.{key[1]} no longer matches a "
                                 "violation: remove it from KNOWN_EXCEPTIONS")
    for name, declaration in sorted(declared.items()):
        if name not in schema.tables and (declaration.in_models or schema.source != "models"):
            report.violations.append(f"declared {declaration.kind} table {name} does not "
                                     f"exist in the {schema.source}: remove it from DECLARED")
    types = {table.columns[DISTRIBUTION_COLUMN] for name, table in schema.tables.items()
             if classes.get(name) is Kind.DISTRIBUTED}
    if len(types) > 1:
        report.violations.append(f"distributed tables disagree on the type of "
                                 f"{DISTRIBUTION_COLUMN} ({', '.join(sorted(types))}); "
                                 "co-located tables need one type")
    return report


def _distributed_problems(table: TableShape, classes: Mapping[str, Kind],
                          report: Report) -> Iterable[tuple[str, str, str]]:
    name, pk = table.name, table.primary_key
    if not pk:
        yield name, f"pk_{name}", f"distributed table {name} has no primary key"
    elif DISTRIBUTION_COLUMN not in pk:
        yield name, f"pk_{name}", (f"distributed table {name}: primary key ({', '.join(pk)}) "
                                   f"does not include {DISTRIBUTION_COLUMN}")
    elif pk[0] != DISTRIBUTION_COLUMN:
        report.warnings.append(f"{name}: {DISTRIBUTION_COLUMN} is not the first column of the "
                               "primary key, so its index does not serve tenant_id = X")
    for key in table.unique_keys:
        if DISTRIBUTION_COLUMN not in key.columns:
            yield name, key.name, (f"distributed table {name}: {key.kind} {key.name} "
                                   f"({', '.join(key.columns)}) does not include "
                                   f"{DISTRIBUTION_COLUMN}")
    for fk in table.foreign_keys:
        target = classes.get(fk.target)
        if target is Kind.REFERENCE:
            continue
        if target is Kind.DISTRIBUTED and fk.keeps_tenant():
            continue
        why = (f"does not map {DISTRIBUTION_COLUMN} to {fk.target}.{DISTRIBUTION_COLUMN}"
               if target is Kind.DISTRIBUTED else f"refers to {target or 'unclassified'} "
               f"table {fk.target}")
        yield name, fk.name, (f"distributed table {name}: foreign key {fk.name} "
                              f"({', '.join(fk.columns)}) -> {fk.target} {why}")


# ---- output ------------------------------------------------------------------------------


def _label(kind: Kind | None) -> str:
    if kind is Kind.DISTRIBUTED:
        return f"distributed by {DISTRIBUTION_COLUMN}"
    return str(kind) if kind else "UNCLASSIFIED"


def rows(schema: Schema, classes: Mapping[str, Kind]) -> list[tuple[str, str, str, list[str]]]:
    """(table, class, primary key, foreign keys), reference and local tables first."""
    order = {Kind.REFERENCE: 0, Kind.LOCAL: 1, Kind.DISTRIBUTED: 2}
    found = []
    for name in sorted(schema.tables, key=lambda n: (order[classes[n]] if n in classes else 3,
                                                     n)):
        table = schema.tables[name]
        fks = [f"({', '.join(fk.columns)}) -> {fk.target}"
               + (" [reference]" if classes.get(fk.target) is Kind.REFERENCE else "")
               for fk in sorted(table.foreign_keys, key=lambda f: (f.target, f.columns))]
        found.append((name, _label(classes.get(name)), ", ".join(table.primary_key), fks))
    return found


def plain_table(schema: Schema, classes: Mapping[str, Kind]) -> str:
    found = rows(schema, classes)
    widths = [max(len(r[i]) for r in [("table", "class", "primary key"), *found])
              for i in range(3)]
    lines = []
    for name, kind, pk, fks in [("table", "class", "primary key", ["foreign keys"]), *found]:
        for i, fk in enumerate(fks or [""]):
            cells = (name, kind, pk) if i == 0 else ("", "", "")
            lines.append("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True))
                         + "  " + fk)
    return "\n".join(line.rstrip() for line in lines)


def markdown_table(schema: Schema, classes: Mapping[str, Kind]) -> str:
    lines = ["| table | class | primary key | foreign keys |", "| --- | --- | --- | --- |"]
    for name, kind, pk, fks in rows(schema, classes):
        cell = "<br>".join(f"`{fk}`" for fk in fks) or "-"
        lines.append(f"| `{name}` | {kind} | `{pk}` | {cell.replace('->', '→')} |")
    return "\n".join(lines)


def citus_sql(schema: Schema, classes: Mapping[str, Kind], colocate_with: str) -> str:
    """The statements that turn the schema into Citus tables, each after its FK targets."""
    done: set[str] = set()
    statements = []
    pending = sorted(n for n, k in classes.items() if k is not Kind.LOCAL)
    # Reference tables first (they refer only to each other), then the co-location anchor.
    pending.sort(key=lambda n: (classes[n] is not Kind.REFERENCE, n != colocate_with))
    while pending:
        ready = next((n for n in pending if all(
            fk.target in done or fk.target == n or classes.get(fk.target) is Kind.LOCAL
            for fk in schema.tables[n].foreign_keys)), pending[0])
        pending.remove(ready)
        done.add(ready)
        if classes[ready] is Kind.REFERENCE:
            statements.append(f"SELECT create_reference_table('{ready}');")
        elif ready == colocate_with:
            statements.append(f"SELECT create_distributed_table('{ready}', "
                              f"'{DISTRIBUTION_COLUMN}', shard_count => 64);")
        else:
            statements.append(f"SELECT create_distributed_table('{ready}', "
                              f"'{DISTRIBUTION_COLUMN}', colocate_with => '{colocate_with}');")
    return "\n".join(statements)


def summary(report: Report) -> str:
    counts = {kind: sum(1 for k in report.classes.values() if k is kind) for kind in Kind}
    return (f"{report.source}: {len(report.classes)} classified tables: "
            f"{counts[Kind.DISTRIBUTED]} distributed by {DISTRIBUTION_COLUMN}, "
            f"{counts[Kind.REFERENCE]} reference, {counts[Kind.LOCAL]} local-only; "
            f"{len(report.excused)} known exceptions, {len(report.violations)} violations")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="also check this migrated PostgreSQL database")
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    shown.add_argument("--sql", action="store_true",
                       help="print the Citus statements that distribute the schema, in order")
    args = parser.parse_args(argv)

    schemas = [metadata_schema(model_metadata())]
    if args.database_url:
        schemas.append(asyncio.run(database_schema(args.database_url)))
    reports = [check(schema) for schema in schemas]
    shown_schema, shown_report = schemas[-1], reports[-1]  # the database, when given
    if args.sql:
        print(citus_sql(shown_schema, shown_report.classes, colocate_with="principals"))
    elif args.markdown:
        print(markdown_table(shown_schema, shown_report.classes))
    else:
        print(plain_table(shown_schema, shown_report.classes))
    out = sys.stderr if args.markdown or args.sql else sys.stdout
    for report in reports:
        print(f"\n{summary(report)}", file=out)
        for line in report.warnings:
            print(f"  warning [{report.source}]: {line}", file=out)
        for line in report.excused:
            print(f"  known exception [{report.source}]: {line}", file=out)
        for line in report.violations:
            print(f"  VIOLATION [{report.source}]: {line}", file=out)
    failed = any(report.violations for report in reports)
    print("\nFAILED: the schema cannot be distributed by tenant_id as it stands; see "
          "docs/sharding.md" if failed else "\nOK", file=out)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
