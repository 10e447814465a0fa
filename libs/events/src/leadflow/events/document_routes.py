"""The standard HTTP routes of a versioned document (``leadflow.events.documents``).

``document_router(kind, path=...)`` gives, under ``path``:

- ``GET path``: the current version (``Document.body()``: the document's fields plus
  ``version``, ``source`` — ``built-in`` or ``published`` —, ``published_by``,
  ``published_at``, ``note``), with ``ETag: "<version>"``;
- ``GET path/versions``: ``{"versions": [...]}``, every published version newest first;
- ``GET path/versions/{version}``: one version (0: the built-in one), 404 otherwise;
- ``PUT`` or ``POST path`` (the service's choice; today's URLs stay): publish. The body is
  the document (version fields in it are ignored, so a GET can be edited and sent back),
  optionally with ``published_by`` and ``note``; ``X-Published-By`` works too. ``If-Match:
  "<version>"`` refuses to publish over a version the publisher did not see. Answers 201
  with the new version's body, ``ETag`` and ``Location``; 422 problem+json naming every
  wrong field; 409 naming the version when another publisher got there first.

Every route declares its permission (``leadflow.events.access``). A service adds what is its
own through two hooks: ``view`` (extra figures in a version's body, e.g. which SLA policies
hold each process stage) and ``after_publish`` (more work in the publish's transaction,
e.g. scoring's re-score job, whose fields join the answer).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Path, Response

from leadflow.events.access import Permission, requires
from leadflow.events.deps import KitDep
from leadflow.events.documents import Document, DocumentKind
from leadflow.events.errors import Problem
from leadflow.events.guards import INT32_MAX
from leadflow.events.kit import ServiceKit
from leadflow.events.sql import Tx
from leadflow.events.uow import UnitOfWork

View = Callable[[Tx, Document[Any]], Awaitable[dict[str, Any]]]
AfterPublish = Callable[[ServiceKit, UnitOfWork, Document[Any]], Awaitable[dict[str, Any]]]
VersionNumber = Annotated[int, Path(ge=0, le=INT32_MAX)]


async def plain_view(tx: Tx, document: Document[Any]) -> dict[str, Any]:
    return document.body()


def _expected(if_match: str | None) -> int | None:
    """``If-Match: "3"`` (or ``3``, or ``W/"3"``) → 3; anything else is a 409 like a stale one."""
    if if_match is None:
        return None
    value = if_match.strip().removeprefix("W/").strip('"')
    if not value.isdigit() or len(value) > 10:
        raise Problem(
            409,
            "Version conflict",
            f"If-Match {if_match!r} names no version",
            extra={"expected_version": None},
        )
    return int(value)


def document_router(
    kind: DocumentKind[Any],
    *,
    path: str,
    read: Permission,
    publish: Permission,
    method: str = "PUT",
    tags: list[str] | None = None,
    view: View = plain_view,
    after_publish: AfterPublish | None = None,
) -> APIRouter:
    """The four standard routes of ``kind`` under ``path``, with their permissions."""
    router = APIRouter(tags=list(tags or [kind.name]))
    title = kind.title

    @router.get(
        path,
        name=f"{kind.name}:current",
        dependencies=[requires(read)],
        summary=f"The current {title}",
    )
    async def current(kit: KitDep, response: Response) -> dict[str, Any]:
        async with kit.connect() as tx:
            document = await kind.current(tx)
            body = await view(tx, document)
        response.headers["ETag"] = f'"{document.version}"'
        return body

    @router.get(
        f"{path}/versions",
        name=f"{kind.name}:versions",
        dependencies=[requires(read)],
        summary=f"Every published {title} version, newest first",
    )
    async def versions(kit: KitDep) -> dict[str, Any]:
        async with kit.connect() as tx:
            return {"versions": await kind.versions(tx)}

    @router.get(
        f"{path}/versions/{{version}}",
        name=f"{kind.name}:version",
        dependencies=[requires(read)],
        summary=f"One {title} version (0: the built-in one)",
    )
    async def one_version(
        kit: KitDep, version: VersionNumber, response: Response
    ) -> dict[str, Any]:
        async with kit.connect() as tx:
            document = await kind.version(tx, version)
            if document is None:
                raise Problem(404, "Not Found", f"no {title} version {version}")
            body = await view(tx, document)
        response.headers["ETag"] = f'"{document.version}"'
        return body

    @router.api_route(
        path,
        methods=[method],
        name=f"{kind.name}:publish",
        dependencies=[requires(publish)],
        status_code=201,
        summary=f"Publish a new {title} version",
    )
    async def publish_version(
        kit: KitDep,
        response: Response,
        body: Annotated[dict[str, Any], Body()],
        if_match: Annotated[str | None, Header()] = None,
        x_published_by: Annotated[str | None, Header(max_length=200)] = None,
    ) -> dict[str, Any]:
        draft = kind.draft(body)
        published_by = _text(body, "published_by") or x_published_by
        note = _text(body, "note")
        expected = _expected(if_match)
        async with kit.unit_of_work() as uow:
            document = await kind.publish(
                uow, draft, published_by=published_by, note=note, expected=expected
            )
            extra = await after_publish(kit, uow, document) if after_publish else {}
            answer = await view(uow.tx, document) | extra
        response.headers["ETag"] = f'"{document.version}"'
        response.headers["Location"] = f"{path}/versions/{document.version}"
        return answer

    return router


def _text(body: dict[str, Any], name: str) -> str | None:
    """An optional short text of the version (who, why), 422 naming it when it is not one."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 2000:
        raise Problem.invalid_fields(
            [{"field": name, "message": "a text of at most 2000 characters"}]
        )
    return value
