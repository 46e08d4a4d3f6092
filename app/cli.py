"""The ``nentang`` command line: serve, db, bootstrap, admin, apply, audit, keys, tenants."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings, get_settings
from app.core import migrations
from app.core.db import Database

T = TypeVar("T")


def _err(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _operator() -> Any:
    from app.identity.callers import Operator

    try:
        return Operator(getpass.getuser())
    except (KeyError, OSError):
        return Operator()


def _run_in_platform_scope(
    settings: Settings, reason: str, work: Callable[[AsyncSession], Awaitable[T]]
) -> T:
    """Run ``work`` in one transaction with the platform scope, migrating first if embedded."""
    from app.tenancy.scope import TenantScope, apply_scope

    if settings.should_auto_migrate:
        if settings.is_sqlite:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        migrations.upgrade(settings)

    async def main() -> T:
        db = Database(settings.effective_database_url, pool_size=1)
        try:
            async with db.sessionmaker() as session, session.begin():
                await apply_scope(session, TenantScope.platform(reason))
                return await work(session)
        finally:
            await db.dispose()

    return asyncio.run(main())


def worker_app() -> Any:
    """Application factory for each ``serve --workers N`` process (which starts afresh)."""
    from app.core.logging import configure_logging
    from app.main import create_app

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    return create_app(settings)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from app.identity.tokens import SigningKeyError, load_or_create_keys

    # Prepare once, before any worker starts, so workers never race to migrate or make keys.
    if settings.should_auto_migrate:
        if settings.is_sqlite:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        migrations.upgrade(settings)
    try:
        load_or_create_keys(settings.effective_signing_key_file)
    except SigningKeyError as exc:
        _err(str(exc))
        return 1
    # log_config=None: uvicorn's own lines go through the service's JSON log handler.
    # On SIGTERM uvicorn stops accepting, lets in-flight requests finish for up to
    # --graceful-timeout seconds, then closes what is left.
    options: dict[str, Any] = {"host": args.host, "port": args.port, "access_log": False,
                               "log_config": None,
                               "timeout_graceful_shutdown": args.graceful_timeout}
    if args.workers > 1:
        uvicorn.run("app.cli:worker_app", factory=True, workers=args.workers, **options)
    else:
        from app.main import create_app

        uvicorn.run(create_app(settings), **options)
    return 0


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    """Fire SLA timers and send hook deliveries until stopped."""
    import signal
    import socket

    from app import worker
    from app.core.metrics import setup_metrics, shutdown_metrics
    from app.deliveries.worker import Options

    if settings.should_auto_migrate:
        if settings.is_sqlite:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        migrations.upgrade(settings)
    name = args.name or f"{socket.gethostname()}-{os.getpid()}"
    options = Options.from_settings(settings)

    async def work() -> int:
        setup_metrics("worker")
        db = Database(settings.effective_database_url, pool_size=2)
        try:
            if args.once:
                done = await worker.run_round(db, name, options=options, batch=args.batch)
                fired, sent = done.fired, done.sent
                _err(f"Fired {fired.fired} timers ({fired.skipped} no longer due, "
                     f"{len(fired.errors)} failed).")
                _err(f"Sent {sent.delivered} deliveries ({sent.failed} to retry later, "
                     f"{sent.dead} given up on).")
                return 1 if fired.errors else 0
            stop = worker.Stop.new()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stop.signal)
            _err(f"Worker {name}: firing due SLA timers and sending deliveries every "
                 f"{args.poll:g} s; stop with Ctrl+C or SIGTERM.")
            released = await worker.run_forever(
                db, name, options=options, poll_seconds=args.poll, batch=args.batch,
                stop=stop, grace_seconds=args.grace)
            _err(f"Worker {name} stopped (released {released.timers} timers and "
                 f"{released.deliveries} deliveries).")
            return 0
        finally:
            await db.dispose()
            shutdown_metrics()

    return asyncio.run(work())


def cmd_db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    if settings.is_sqlite:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    _err(f"Migrating to {args.revision} ...")
    migrations.upgrade(settings, args.revision)
    _err("Done.")
    return 0


def cmd_db_create_roles(args: argparse.Namespace, settings: Settings) -> int:
    from app.core.roles import create_roles

    if settings.is_sqlite:
        _err("SQLite has no roles; nothing to do.")
        return 0
    for line in asyncio.run(create_roles(settings, app_password=args.app_password)):
        _err(line)
    return 0


def cmd_bootstrap(args: argparse.Namespace, settings: Settings) -> int:
    from app.tenancy.bootstrap import BootstrapConflict, bootstrap

    operator = _operator()
    try:
        result = _run_in_platform_scope(
            settings, "bootstrap",
            lambda s: bootstrap(s, code=args.code, name=args.name, operator=operator))
    except BootstrapConflict as exc:
        _err(str(exc))
        return 2
    if result.created:
        _err(f"Created root tenant {result.root.code} ({result.root.name}) and the platform "
             "administrator client. The secret is shown only now: store it safely.")
        print(json.dumps({"tenant": result.root.code, "client_id": result.client_id,
                          "client_secret": result.client_secret}, ensure_ascii=False))
        return 0
    _err(f"Root tenant {result.root.code} ({result.root.name}) already exists; nothing created.")
    for client_id in result.existing_admins:
        _err(f"Platform administrator client {client_id} already exists (its secret is not "
             "shown again).")
    print(json.dumps({"tenant": result.root.code, "created": False,
                      "existing_clients": result.existing_admins}, ensure_ascii=False))
    return 0


def cmd_admin(args: argparse.Namespace, settings: Settings) -> int:
    from app.identity import break_glass

    operator = _operator()
    if args.admin_command == "create":
        role = args.role or "tenant_admin"
        _err(f"Creating local administrator {args.username} ({role}) in {args.tenant} ...")

        def work(session: AsyncSession) -> Awaitable[break_glass.Credentials]:
            return break_glass.create_admin(
                session, operator=operator, tenant_code=args.tenant, username=args.username,
                display_name=args.name or args.username, role=role, totp=not args.no_totp)
    else:
        _err(f"Resetting the password of {args.username} in {args.tenant} ...")

        def work(session: AsyncSession) -> Awaitable[break_glass.Credentials]:
            return break_glass.reset_admin(session, operator=operator, tenant_code=args.tenant,
                                           username=args.username)
    try:
        result = _run_in_platform_scope(settings, "break-glass administration", work)
    except break_glass.BreakGlassError as exc:
        _err(str(exc))
        return 2
    _err("Done. The password (and TOTP enrolment URI) are shown only now.")
    print(json.dumps({"tenant": result.tenant, "username": result.username,
                      "password": result.password, "totp_uri": result.totp_uri},
                     ensure_ascii=False))
    return 0


class _DryRun(Exception):
    """Raised to roll back a dry run's transaction while keeping its report."""

    def __init__(self, reports: list[Any]) -> None:
        self.reports = reports


def cmd_apply(args: argparse.Namespace, settings: Settings) -> int:
    from app.tenancy import manifest

    files = manifest.manifest_files([Path(p) for p in args.paths])
    if not files:
        _err("No manifest files found.")
        return 2
    try:
        loaded = [(str(f), manifest.load(f)) for f in files]
    except manifest.ManifestError as exc:
        _err(str(exc))
        return 2
    operator = _operator()

    def progress(done: int, total: int) -> None:
        if done == total or done % 250 == 0:
            _err(f"  {done}/{total}")

    async def work(session: AsyncSession) -> list[tuple[str, manifest.ApplyReport]]:
        reports = []
        for source, entries in loaded:
            _err(f"Applying {source} ({len(entries)} tenants)")
            reports.append((source, await manifest.apply(
                session, entries, source=source, operator=operator, progress=progress)))
        if args.dry_run:
            raise _DryRun(reports)
        return reports

    try:
        reports = _run_in_platform_scope(settings, "apply manifest", work)
    except _DryRun as dry:
        reports = dry.reports
    except manifest.ManifestError as exc:
        _err(str(exc))
        return 2
    for source, report in reports:
        note = " (dry run: nothing saved)" if args.dry_run else ""
        _err(f"{source}: {len(report.created)} created, {len(report.updated)} renamed, "
             f"{len(report.unchanged)} unchanged{note}")
    return 0


def cmd_audit_verify(args: argparse.Namespace, settings: Settings) -> int:
    from sqlalchemy import select

    from app.audit.service import ChainReport, verify_chain
    from app.tenancy.models import Tenant

    async def work(session: AsyncSession) -> list[tuple[str, ChainReport]]:
        stmt = select(Tenant).order_by(Tenant.path)
        if args.tenant:
            stmt = stmt.where(Tenant.code == args.tenant)
        tenants = (await session.execute(stmt)).scalars().all()
        if args.tenant and not tenants:
            raise SystemExit(f"No tenant '{args.tenant}'.")
        return [(t.code, await verify_chain(session, t.id)) for t in tenants]

    broken = 0
    for code, report in _run_in_platform_scope(settings, "audit verify", work):
        line: dict[str, Any] = {"tenant": code, "ok": report.ok, "checked": report.checked,
                                "head_seq": report.head_seq, "head_hash": report.head_hash}
        if not report.ok:
            broken += 1
            line.update(broken_seq=report.broken_seq, reason=report.reason)
        if args.expect_head and args.tenant:
            seq, _, digest = args.expect_head.partition(":")
            if (str(report.head_seq), report.head_hash) != (seq, digest) and report.ok:
                broken += 1
                line.update(ok=False, reason=f"head is {report.head_seq}:{report.head_hash}, "
                            f"expected {args.expect_head} (records removed from the end?)")
        print(json.dumps(line, ensure_ascii=False))
    _err("Audit chains intact." if not broken else f"{broken} broken chain(s).")
    return 1 if broken else 0


def cmd_keys_rotate(args: argparse.Namespace, settings: Settings) -> int:
    from app.identity.tokens import (
        RELOAD_INTERVAL_SECONDS,
        RETIRE_MARGIN_SECONDS,
        SigningKeyError,
        format_time,
        rotate_keys,
    )

    path = settings.effective_signing_key_file
    _err(f"Rotating the token signing keys in {path} ...")
    try:
        rotation = rotate_keys(path, settings.access_token_ttl_seconds,
                               activate_in=args.activate_in)
    except SigningKeyError as exc:
        _err(str(exc))
        return 1
    if rotation.upgraded:
        _err("  The file held a single PEM key; it is now a key set (JSON).")
    if rotation.new.sign_from is None:
        _err(f"  New active key {rotation.new.kid}: new tokens are signed with it.")
        handover = "now"
    else:
        handover = format_time(rotation.new.sign_from)
        _err(f"  New key {rotation.new.kid} is published and verifies now; it signs new "
             f"tokens from {handover} (in {args.activate_in:g} s), once every replica has "
             "the new file.")
    for key in rotation.retiring:
        assert key.retire_after is not None
        _err(f"  Previous key {key.kid} signs until {handover}, then still verifies until "
             f"{format_time(key.retire_after)} (token lifetime "
             f"{settings.access_token_ttl_seconds} s + {RETIRE_MARGIN_SECONDS} s).")
    for key in rotation.pruned:
        _err(f"  Removed retired key {key.kid}.")
    _err(f"Done. Running services pick up the new key within {RELOAD_INTERVAL_SECONDS:g} s.")
    print(json.dumps({"kid": rotation.new.kid, "signs_from": handover,
                      "retiring": [key.kid for key in rotation.retiring],
                      "pruned": [key.kid for key in rotation.pruned]}))
    return 0


def cmd_keys_list(args: argparse.Namespace, settings: Settings) -> int:
    import time

    from app.identity.tokens import SigningKeyError, format_time, missing_key_file, read_keys

    path = settings.effective_signing_key_file
    try:
        keys = read_keys(path)
    except FileNotFoundError:
        _err(missing_key_file(path))
        return 1
    except SigningKeyError as exc:
        _err(str(exc))
        return 1
    now = time.time()
    width = max(len(key.kid) for key in keys.keys)
    print(f"{'KID':<{width}}  {'CREATED':<25}  STATUS")
    for key in keys.keys:
        print(f"{key.kid:<{width}}  {format_time(key.created_at):<25}  "
              f"{keys.status(key, now)}")
    kind = ("a single PEM key (made a key set at the next rotation)" if keys.legacy_pem
            else "a key set")
    _err(f"{len(keys.keys)} key(s) in {path}, {kind}.")
    return 0


def cmd_tenants_vietnam(args: argparse.Namespace, settings: Settings) -> int:
    from app.tenancy.vietnam import build_manifest

    text = json.dumps(build_manifest(args.root), ensure_ascii=False, indent=1) + "\n"
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        _err(f"Wrote {args.output}")
    else:
        sys.stdout.write(text)
    return 0


def cmd_export_submissions(args: argparse.Namespace, settings: Settings) -> int:
    from app.forms.export_client import ExportFailed, ExportRequest, download

    credentials = _api_client_credentials(args)
    if credentials is None:
        return 2
    client_id, secret = credentials
    output = Path(args.output or f"{args.tenant}-{args.form}.{args.format}")
    if any("=" not in item for item in args.where):
        _err("--where takes data.<field>=<value>")
        return 2
    filters = tuple((name, value) for name, _, value in
                    (item.partition("=") for item in args.where))
    request = ExportRequest(api=args.api, client_id=client_id, client_secret=secret,
                            tenant=args.tenant, form=args.form, format=args.format,
                            output=output, params=filters)
    try:
        total = download(request, progress=sys.stderr if sys.stderr.isatty() or args.progress
                         else None)
    except (ExportFailed, httpx.HTTPError) as exc:
        _err(f"Export failed: {exc}")
        return 1
    _err(f"Wrote {total} submission(s) to {output}")
    return 0


def _api_client_credentials(args: argparse.Namespace) -> tuple[str, str] | None:
    client_id = args.client_id or os.environ.get("NENTANG_CLIENT_ID")
    secret = os.environ.get("NENTANG_CLIENT_SECRET")
    if not client_id or not secret:
        _err("Set NENTANG_CLIENT_ID (or --client-id) and NENTANG_CLIENT_SECRET: the command "
             "runs as that API client, with its permissions.")
        return None
    return client_id, secret


def cmd_subscriptions(args: argparse.Namespace, settings: Settings) -> int:
    from app.core.api_client import ApiFailed
    from app.deliveries import subscriptions_client as client

    credentials = _api_client_credentials(args)
    if credentials is None:
        return 2
    try:
        with client.session(args.api, *credentials) as http:
            if args.subscriptions_command == "list":
                for row in client.listed(http, args.tenant):
                    print(json.dumps(row, ensure_ascii=False))
            elif args.subscriptions_command == "apply":
                for name, what in client.apply(http, args.tenant, Path(args.file)):
                    _err(f"{what} {name}")
            else:
                client.delete(http, args.tenant, args.name)
                _err(f"deleted {args.name}")
    except (ApiFailed, httpx.HTTPError) as exc:
        _err(f"Failed: {exc}")
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nentang", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the API (migrates the embedded SQLite first)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="worker processes")
    serve.add_argument("--graceful-timeout", type=float, default=20.0, metavar="SECONDS",
                       help="on SIGTERM, how long in-flight requests may take to finish "
                       "(default 20; keep it below the orchestrator's grace period)")
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="fire SLA timers, escalations and automatic "
                            "actions (run any number of them)")
    worker.add_argument("--once", action="store_true",
                        help="fire what is due now, then exit (exit 1 if any failed)")
    worker.add_argument("--poll", type=float, default=5.0, help="seconds between polls")
    worker.add_argument("--batch", type=int, default=200, help="timers claimed at a time")
    worker.add_argument("--name", help="this worker's name in leases (default: host-pid)")
    worker.add_argument("--grace", type=float, default=20.0, metavar="SECONDS",
                        help="on SIGTERM, how long the round in progress may take to finish "
                        "before it is cancelled (default 20); a second signal cancels at once. "
                        "Unfinished work is released to other workers either way")
    worker.set_defaults(func=cmd_worker)

    db = sub.add_parser("db", help="database schema and roles")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_sub.add_parser(
        "upgrade", help="apply migrations (uses NENTANG_ADMIN_DATABASE_URL)")
    upgrade.add_argument("revision", nargs="?", default="head")
    upgrade.set_defaults(func=cmd_db_upgrade)
    roles = db_sub.add_parser(
        "create-roles", help="create the owner and service roles on PostgreSQL (as a superuser)")
    roles.add_argument("--app-password", help="password for the service role (LOGIN)")
    roles.set_defaults(func=cmd_db_create_roles)

    boot = sub.add_parser("bootstrap", help="create the root tenant and a platform admin client")
    boot.add_argument("--code", required=True, help="root tenant code, e.g. BNV")
    boot.add_argument("--name", required=True, help='root tenant name, e.g. "Bộ Nội vụ"')
    boot.set_defaults(func=cmd_bootstrap)

    admin = sub.add_parser("admin", help="break-glass local administrators (no token needed)")
    admin_sub = admin.add_subparsers(dest="admin_command", required=True)
    create = admin_sub.add_parser(
        "create", help="create a local administrator; prints its password (and TOTP URI) once")
    create.add_argument("--tenant", required=True, help="tenant code, e.g. BNV")
    create.add_argument("--username", required=True)
    create.add_argument("--name", help="display name (default: the username)")
    create.add_argument("--role", help="role at the tenant (default: tenant_admin; "
                        "platform_admin for the whole platform)")
    create.add_argument("--no-totp", action="store_true",
                        help="do not require a TOTP code at sign-in (not recommended)")
    create.set_defaults(func=cmd_admin)
    reset = admin_sub.add_parser(
        "reset", help="set a new password, lift the lockout and end the user's sessions")
    reset.add_argument("--tenant", required=True)
    reset.add_argument("--username", required=True)
    reset.set_defaults(func=cmd_admin)

    apply = sub.add_parser("apply", help="apply tenant manifests (files or directories)")
    apply.add_argument("paths", nargs="+")
    apply.add_argument("--dry-run", action="store_true", help="check and report, save nothing")
    apply.set_defaults(func=cmd_apply)

    audit = sub.add_parser("audit", help="the audit trail")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_sub.add_parser("verify", help="verify hash chains; exit 1 if one is broken")
    verify.add_argument("--tenant", help="one tenant's code (default: every tenant)")
    verify.add_argument("--expect-head", metavar="SEQ:HASH",
                        help="with --tenant: fail unless the chain ends here (detects truncation)")
    verify.set_defaults(func=cmd_audit_verify)

    keys = sub.add_parser("keys", help="the keys that sign access tokens")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    rotate = keys_sub.add_parser(
        "rotate", help="make a new signing key; the previous one verifies until its tokens "
        "expire, then goes")
    rotate.add_argument(
        "--activate-in", type=float, default=10.0, metavar="SECONDS",
        help="publish the new key now and sign with it only after this many seconds, so "
        "every replica holds it first (default 10: replicas sharing the file re-read it "
        "within 5 s; with a Kubernetes Secret use 180, the kubelet's sync takes a minute "
        "or two); 0 signs with it at once")
    rotate.set_defaults(func=cmd_keys_rotate)
    keys_list = keys_sub.add_parser("list", help="list the signing keys and their status")
    keys_list.set_defaults(func=cmd_keys_list)

    tenants = sub.add_parser("tenants", help="tenant manifests")
    tenants_sub = tenants.add_subparsers(dest="tenants_command", required=True)
    vietnam = tenants_sub.add_parser(
        "vietnam", help="generate the manifest of Vietnam's 34 provinces and 3,321 communes")
    vietnam.add_argument("--root", default="BNV", help="code of the root tenant (default BNV)")
    vietnam.add_argument("--output", "-o", help="file to write (default: stdout)")
    vietnam.set_defaults(func=cmd_tenants_vietnam)

    export = sub.add_parser("export", help="export data through the API")
    export_sub = export.add_subparsers(dest="what", required=True)
    subs = export_sub.add_parser(
        "submissions", help="a form's submissions at a tenant and below, as CSV or XLSX")
    subs.add_argument("--api", default="http://127.0.0.1:8000", help="the platform's URL")
    subs.add_argument("--client-id", help="API client (default: NENTANG_CLIENT_ID); the secret "
                      "comes from NENTANG_CLIENT_SECRET")
    subs.add_argument("--tenant", required=True, help="tenant code")
    subs.add_argument("--form", required=True, help="form key")
    subs.add_argument("--format", choices=["csv", "xlsx"], default="csv")
    subs.add_argument("--where", action="append", default=[], metavar="data.FIELD=VALUE",
                      help="filter by a field's value (repeatable)")
    subs.add_argument("--output", "-o", help="file to write (default: TENANT-FORM.FORMAT)")
    subs.add_argument("--progress", action="store_true",
                      help="show the progress bar even when stderr is not a terminal")
    subs.set_defaults(func=cmd_export_submissions)

    subscriptions = sub.add_parser(
        "subscriptions", help="a unit's subscriptions (events sent to other systems), through "
        "the API as an API client")
    subscriptions_sub = subscriptions.add_subparsers(dest="subscriptions_command",
                                                     required=True)
    for name, text in (("list", "the unit's subscriptions, one JSON line each (secrets ***)"),
                       ("apply", "create or replace, by name, the subscriptions in a JSON "
                        "file (one, or a list)"),
                       ("delete", "delete a subscription by name")):
        command = subscriptions_sub.add_parser(name, help=text)
        command.add_argument("--api", default="http://127.0.0.1:8000", help="the platform's URL")
        command.add_argument("--client-id", help="API client (default: NENTANG_CLIENT_ID); the "
                             "secret comes from NENTANG_CLIENT_SECRET")
        command.add_argument("--tenant", required=True, help="tenant code")
        if name == "apply":
            command.add_argument("--file", "-f", required=True, help="JSON file")
        if name == "delete":
            command.add_argument("--name", required=True)
        command.set_defaults(func=cmd_subscriptions)
    return parser


def main(argv: list[str] | None = None) -> int:
    from app.core.logging import configure_logging

    args = build_parser().parse_args(argv)
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    try:
        code: int = args.func(args, settings)
    except (DBAPIError, OSError) as exc:
        _err(f"Database error: {str(exc).splitlines()[0]}")
        _err("Is the database reachable, and is its schema migrated (`nentang db upgrade`)?")
        return 1
    return code


if __name__ == "__main__":
    raise SystemExit(main())
