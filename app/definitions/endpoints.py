"""The routes every versioned definition has, built once per kind.

``/{plural}`` (create, list), ``/{plural}/{key}``, and ``/{plural}/{key}/versions[/{n}]`` with
publish, deprecate and diff. The kind supplies its lifecycle, its permissions, its publish
step and its diff.

This module deliberately does not use postponed annotations: the route functions are built
inside :func:`add_definition_routes`, and FastAPI must see their dependency annotations as
objects, not as names to look up in this module.
"""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.pagination import DEFAULT_LIMIT, Limit, Page, decode_cursor, split_page
from app.definitions.lifecycle import Lifecycle, tenant_codes
from app.definitions.models import DefinitionHead, DefinitionVersion
from app.definitions.schemas import (
    DefinitionOut,
    ParentOut,
    PublishOut,
    VersionNumber,
    VersionOut,
)
from app.identity.auth import ScopedSession
from app.identity.dependencies import Access
from app.tenancy.models import Tenant


async def definition_out(session: AsyncSession, lifecycle: Lifecycle[Any, Any],
                         model: type[DefinitionOut], tenant: Tenant, head: DefinitionHead, *,
                         with_definition: bool) -> DefinitionOut:
    codes = await tenant_codes(session, {head.tenant_id} | (
        {head.base_tenant_id} if head.base_tenant_id else set()))
    own = head.tenant_id == tenant.id
    current = await lifecycle.current(session, head)
    draft = await lifecycle.draft_of(session, head) if own else None
    shown = current or draft
    return model(
        key=head.key, tenant=codes.get(head.tenant_id), inherited=not own,
        status=current.status if current else "draft",
        latest_version=head.latest_version or None,
        draft_version=draft.number if draft else None,
        needs_review=head.needs_review, review_reason=head.review_reason,
        parent=ParentOut(tenant=codes.get(head.base_tenant_id), version=head.base_version)
        if head.base_tenant_id and head.base_version else None,
        created_at=head.created_at, updated_at=head.updated_at,
        definition=shown.definition if with_definition and shown else None)


def version_out(key: str, version: DefinitionVersion, *,
                with_definition: bool = True) -> VersionOut:
    return VersionOut(
        key=key, number=version.number, status=version.status,
        digest=version.digest, created_at=version.created_at, created_by=version.created_by,
        updated_at=version.updated_at, published_at=version.published_at,
        published_by=version.published_by, deprecated_at=version.deprecated_at,
        definition=version.definition if with_definition else None)


def add_definition_routes(
    router: APIRouter, *, lifecycle: Lifecycle[Any, Any], plural: str, read: Any, write: Any,
    out: type[DefinitionOut], publish: Callable[..., Awaitable[tuple[Any, int]]],
    diff: Callable[[Any, Any], dict[str, Any]], diff_model: type[BaseModel],
) -> None:
    """Register the definition routes of one kind on ``router``. ``read`` and ``write`` are
    the ``Annotated[Access, needs(...)]`` types of its permissions; ``publish`` is called
    with ``session`` and the keywords ``caller``, ``tenant``, ``key`` and ``number``."""
    kind, noun = lifecycle.words.kind, lifecycle.words.en
    Definition = Annotated[dict[str, Any], Body(
        description=f"A {noun} definition ({plural}/{kind}.schema.json).")]

    async def create(access: write, definition: Definition,
                     session: ScopedSession) -> DefinitionOut:
        a: Access = access
        head, _draft = await lifecycle.create(session, caller=a.principal, tenant=a.tenant,
                                              definition=definition)
        return await definition_out(session, lifecycle, out, a.tenant, head,
                                    with_definition=True)

    async def list_all(access: read, session: ScopedSession,
                       cursor: str | None = None, limit: Limit = DEFAULT_LIMIT) -> Any:
        a: Access = access
        after = decode_cursor(cursor, str)
        heads = await lifecycle.usable_at(session, a.tenant,
                                          after=after[0] if after else None, limit=limit + 1)
        page, next_cursor = split_page(heads, limit, lambda h: [h.key])
        return {"items": [await definition_out(session, lifecycle, out, a.tenant, h,
                                               with_definition=False) for h in page],
                "next_cursor": next_cursor}

    async def read_one(access: read, key: str,
                       session: ScopedSession) -> DefinitionOut:
        a: Access = access
        head = await lifecycle.resolve(session, a.tenant, key)
        return await definition_out(session, lifecycle, out, a.tenant, head,
                                    with_definition=True)

    async def list_versions(access: read, key: str,
                            session: ScopedSession) -> list[VersionOut]:
        a: Access = access
        head = await lifecycle.resolve(session, a.tenant, key)
        return [version_out(key, v, with_definition=False)
                for v in await lifecycle.versions(session, head, a.tenant)]

    async def create_version(access: write, key: str,
                             session: ScopedSession,
                             definition: Annotated[dict[str, Any] | None, Body()] = None
                             ) -> VersionOut:
        a: Access = access
        draft = await lifecycle.new_draft(session, caller=a.principal, tenant=a.tenant,
                                          key=key, definition=definition)
        return version_out(key, draft)

    async def read_version(access: read, key: str,
                           number: VersionNumber, session: ScopedSession) -> VersionOut:
        a: Access = access
        head = await lifecycle.resolve(session, a.tenant, key)
        return version_out(key, await lifecycle.version(session, head, a.tenant, number))

    async def update_version(access: write, key: str,
                             number: VersionNumber, definition: Definition,
                             session: ScopedSession) -> VersionOut:
        a: Access = access
        draft = await lifecycle.update_draft(session, caller=a.principal, tenant=a.tenant,
                                             key=key, number=number, definition=definition)
        return version_out(key, draft)

    async def discard_version(access: write, key: str,
                              number: VersionNumber, session: ScopedSession) -> Response:
        a: Access = access
        await lifecycle.discard_draft(session, caller=a.principal, tenant=a.tenant, key=key,
                                      number=number)
        return Response(status_code=204)

    async def publish_version(access: write, key: str,
                              number: VersionNumber, session: ScopedSession) -> PublishOut:
        a: Access = access
        published, flagged = await publish(session, caller=a.principal, tenant=a.tenant,
                                           key=key, number=number)
        return PublishOut(**version_out(key, published).model_dump(),
                          variants_flagged=flagged)

    async def deprecate_version(access: write, key: str,
                                number: VersionNumber, session: ScopedSession) -> VersionOut:
        a: Access = access
        return version_out(key, await lifecycle.deprecate(
            session, caller=a.principal, tenant=a.tenant, key=key, number=number))

    async def diff_versions(access: read, key: str,
                            a: VersionNumber, b: VersionNumber,
                            session: ScopedSession) -> dict[str, Any]:
        caller: Access = access
        head = await lifecycle.resolve(session, caller.tenant, key)
        first = await lifecycle.version(session, head, caller.tenant, a)
        second = await lifecycle.version(session, head, caller.tenant, b)
        return diff(first, second)

    base, one, versions = f"/{plural}", f"/{plural}/{{key}}", f"/{plural}/{{key}}/versions"
    routes: list[tuple[str, str, Callable[..., Any], dict[str, Any]]] = [
        ("POST", base, create, {
            "status_code": 201, "response_model": out, "name": f"create_{kind}",
            "summary": f"Create a {noun} (version 1 as a draft); an ancestor's key makes a "
            "variant"}),
        ("GET", base, list_all, {
            "response_model": Page[out], "name": f"list_{plural}",  # type: ignore[valid-type]
            "summary": f"{noun.capitalize()}s usable here: the tenant's own and the nearest "
            "ancestor's per key"}),
        ("GET", one, read_one, {"response_model": out, "name": f"read_{kind}"}),
        ("GET", versions, list_versions, {
            "response_model": list[VersionOut], "name": f"list_{kind}_versions",
            "summary": f"The {noun}'s versions, newest first (an ancestor's drafts are not "
            "shown)"}),
        ("POST", versions, create_version, {
            "status_code": 201, "response_model": VersionOut, "name": f"create_{kind}_version",
            "summary": "Start the next version as a draft (a copy of the current one if no "
            "body)"}),
        ("GET", versions + "/{number}", read_version, {
            "response_model": VersionOut, "name": f"read_{kind}_version"}),
        ("PUT", versions + "/{number}", update_version, {
            "response_model": VersionOut, "name": f"update_{kind}_version",
            "summary": "Replace a draft's definition (409 for a published version)"}),
        ("DELETE", versions + "/{number}", discard_version, {
            "status_code": 204, "name": f"discard_{kind}_version",
            "summary": f"Discard a draft (a {noun} never published goes with it)"}),
        ("POST", versions + "/{number}/publish", publish_version, {
            "response_model": PublishOut, "name": f"publish_{kind}_version",
            "summary": f"Publish a draft: it becomes immutable and the {noun}'s current "
            "version"}),
        ("POST", versions + "/{number}/deprecate", deprecate_version, {
            "response_model": VersionOut, "name": f"deprecate_{kind}_version",
            "summary": "Take a published version out of use (work already started keeps it)"}),
        ("GET", versions + "/{a}/diff/{b}", diff_versions, {
            "response_model": diff_model, "response_model_by_alias": True,
            "name": f"diff_{kind}_versions", "summary": "What changed from version a to "
            "version b"}),
    ]
    for method, path, endpoint, options in routes:
        router.add_api_route(path, endpoint, methods=[method], **options)
