"""A tenant's signing set-up: which provider, its configuration, and what a signature must
satisfy (trust anchors, revocation, signer matching). The nearest set-up on a tenant's
lineage applies, so a ministry configures its CA once and every unit below inherits it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.core.db import utcnow
from app.core.problems import Problem, not_found
from app.core.validation import settings_errors
from app.identity.callers import Caller
from app.identity.principals import path_ids
from app.signing import providers, receipts, verification
from app.signing.models import SigningConfig
from app.tenancy.models import Tenant

MASK = "***"


def invalid(errors: list[dict[str, str]]) -> Problem:
    return Problem(422, "signing-config-invalid", "Cấu hình ký số không hợp lệ",
                   "Invalid signing configuration", detail="See errors.", errors=errors)


def _error(pointer: str, en: str, vi: str) -> dict[str, str]:
    return {"pointer": pointer, "detail": en, "detail_vi": vi}


@dataclass(frozen=True)
class Effective:
    """The set-up in force at a tenant, and the tenant that declared it."""

    row: SigningConfig
    provider: providers.SigningProvider

    @property
    def policy(self) -> verification.Policy:
        return policy_of(self.row.policy)

    @property
    def format(self) -> str:
        """``cms`` (detached CAdES-BES) or ``jws`` (compact JWS with ``x5c``)."""
        return str(self.row.policy.get("format", "cms"))


def policy_of(stored: Mapping[str, Any]) -> verification.Policy:
    revocation = stored.get("revocation") or {}
    match = stored.get("signer_match")
    return verification.Policy(
        trust_anchors=verification.parse_certificates(stored.get("trust_anchors", [])),
        revocation=revocation.get("mode", "off"),
        crls=verification.parse_crls(revocation.get("crls", [])),
        fetch_revocation=bool(revocation.get("fetch", False)),
        signer_match=None if not match else verification.SignerMatch(
            certificate=match["certificate"], principal=match["principal"],
            strip_prefixes=tuple(match.get("strip_prefixes", ()))))


def check(body: Mapping[str, Any]) -> None:
    """Refuse a set-up that cannot work, naming every offending field."""
    errors: list[dict[str, str]] = []
    provider = providers.available().get(body["provider"])
    if provider is None:
        names = ", ".join(sorted(providers.available()))
        raise invalid([_error("/provider", f"No signing provider '{body['provider']}' is "
                              f"installed (installed: {names}).",
                              f"Không có nhà cung cấp ký số '{body['provider']}'.")])
    errors += settings_errors(provider.config_schema, body["config"], "/config", "provider",
                              "nhà cung cấp")
    if not errors:
        try:
            provider.check_config(body["config"])
        except providers.ConfigError as exc:
            errors.append(_error("/config" + exc.pointer, str(exc), "Cấu hình không dùng được."))
    for key, parse, pointer in (
            ("trust_anchors", verification.parse_certificates, "/trust_anchors"),
            ("crls", verification.parse_crls, "/revocation/crls")):
        values = body["trust_anchors"] if key == "trust_anchors" else body["revocation"]["crls"]
        try:
            parse(values)
        except ValueError as exc:
            errors.append(_error(f"{pointer}/{exc}", "Not a PEM-encoded "
                                 f"{'certificate' if key == 'trust_anchors' else 'CRL'}.",
                                 "Không phải dữ liệu PEM hợp lệ."))
    if body.get("seal"):
        try:
            receipts.check_seal(body["seal"])
        except providers.ConfigError as exc:
            errors.append(_error(exc.pointer, str(exc), "Con dấu không dùng được."))
    if errors:
        raise invalid(errors)


def seal_subject(policy: Mapping[str, Any]) -> dict[str, str] | None:
    seal = policy.get("seal")
    return {"subject": receipts.check_seal(seal)} if seal else None


def _shown_policy(policy: Mapping[str, Any]) -> dict[str, Any]:
    """The policy as the audit trail keeps it: the seal by its subject, never its key."""
    return {**policy, "seal": seal_subject(policy)}


def redacted(provider_name: str, config: Mapping[str, Any]) -> dict[str, Any]:
    provider = providers.available().get(provider_name)
    secrets = providers.secret_fields(provider.config_schema) if provider else frozenset(config)
    return {k: MASK if k in secrets else v for k, v in config.items()}


async def own(session: AsyncSession, tenant: Tenant, *, lock: bool = False) -> SigningConfig | None:
    statement = select(SigningConfig).where(SigningConfig.tenant_id == tenant.id)
    if lock:
        statement = statement.with_for_update()
    return (await session.execute(statement)).scalar_one_or_none()


async def effective(session: AsyncSession, tenant: Tenant) -> Effective | None:
    lineage = path_ids(tenant.path)
    rows = {r.tenant_id: r for r in (await session.execute(select(SigningConfig).where(
        SigningConfig.tenant_id.in_(lineage)))).scalars()}
    for tenant_id in reversed(lineage):
        row = rows.get(tenant_id)
        if row is not None:
            provider = providers.available().get(row.provider)
            if provider is None:
                raise Problem(503, "signing-provider-missing", "Thiếu nhà cung cấp ký số",
                              "Signing provider not installed", detail=f"The signing provider "
                              f"'{row.provider}' configured for this unit is not installed.")
            return Effective(row, provider)
    return None


async def replace_own(session: AsyncSession, *, caller: Caller, tenant: Tenant,
                      body: dict[str, Any]) -> SigningConfig:
    check(body)
    row = await own(session, tenant, lock=True)
    before = None if row is None else {"provider": row.provider,
                                       "config": redacted(row.provider, row.config),
                                       "policy": _shown_policy(row.policy)}
    policy = {"trust_anchors": body["trust_anchors"], "revocation": body["revocation"],
              "signer_match": body["signer_match"], "format": body["format"],
              "seal": body.get("seal")}
    now = utcnow()
    if row is None:
        row = SigningConfig(tenant_id=tenant.id, provider=body["provider"],
                            config=body["config"], policy=policy, created_at=now,
                            updated_at=now)
        session.add(row)
    else:
        row.provider, row.config, row.policy, row.updated_at = (
            body["provider"], body["config"], policy, now)
    await audit.record(session, tenant_id=tenant.id, actor=caller.actor,
                       action="signing.configure", resource_type="signing_config",
                       resource_id=str(tenant.id), before=before,
                       after={"provider": body["provider"],
                              "config": redacted(body["provider"], body["config"]),
                              "policy": _shown_policy(policy)})
    await session.flush()
    return row


async def delete_own(session: AsyncSession, *, caller: Caller, tenant: Tenant) -> None:
    row = await own(session, tenant, lock=True)
    if row is None:
        raise not_found("signing-config", tenant.code)
    await audit.record(session, tenant_id=tenant.id, actor=caller.actor,
                       action="signing.delete", resource_type="signing_config",
                       resource_id=str(tenant.id), before={"provider": row.provider})
    await session.delete(row)
    await session.flush()
