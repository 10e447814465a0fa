"""Who may call what: the one permission table of every service, and how a route uses it.

A route declares exactly one permission, through one dependency:

    @router.get("/v1/funnel", dependencies=[requires(Permission.REPORTS)])
    async def funnel(...): ...

    async def accept(who: Annotated[Principal, requires(Permission.HANDOFF)], ...):
        scope = who.own_leads(Permission.HANDOFF)  # a rep: their rep id; else None

    @router.post("/v1/forms/{key}", dependencies=[public()])   # deliberately open

``PERMISSIONS`` maps each permission to the roles that hold it; nothing else in Leadflow
decides which role may do what, so ``docs/access.md`` is generated from it and a test walks
every route of every service with every role and checks the answers. A credential is one of:

- a person's token (a JWT from the configured issuer, verified in :mod:`.tokens`), whose
  roles come from ``LEADFLOW_AUTH_ROLES_CLAIM`` and rep id from ``LEADFLOW_AUTH_REP_CLAIM``;
- the bootstrap admin token (``LEADFLOW_ADMIN_TOKEN``), an automation credential acting as
  ``admin``;
- a credential a service resolves itself (routing's rep tokens, see
  :func:`add_token_resolver`), and intake's scoped API keys (``X-Api-Key``), which only the
  capture permissions accept (declared with :func:`declares`).

No credential: 401. A credential that is not valid: 401. A valid one whose roles do not hold
the permission: 403.
"""

from __future__ import annotations

import hmac
import weakref
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer

from leadflow.events.deps import kit_of
from leadflow.events.errors import Problem
from leadflow.events.kit import ServiceKit
from leadflow.events.tokens import (
    InvalidToken,
    TokenVerifier,
    VerifierConfig,
    claim_at,
    looks_like_jwt,
)


class Role(StrEnum):
    ADMIN = "admin"
    MARKETING_OPS = "marketing_ops"
    SALES_MANAGER = "sales_manager"
    REP = "rep"
    ANALYST = "analyst"


# Not a job: a grant beside a role (carried in the same claim), letting an analyst see the
# personal fields (name, e-mail, phone, free text) that reports otherwise redact.
PERSONAL_DATA = "personal_data"


class Permission(StrEnum):
    PUBLIC = "public"
    AUTHENTICATED = "authenticated"
    OPERATIONS = "operations"
    USERS = "users"
    CAPTURE_INQUIRIES = "capture.inquiries"
    CAPTURE_SCANS = "capture.scans"
    CAPTURE_ACTIVITIES = "capture.activities"
    IMPORTS = "imports"
    FORMS = "forms"
    API_KEYS = "api_keys"
    ACCOUNTS = "accounts"
    ACCOUNTS_READ = "accounts.read"
    LEADS_READ = "leads.read"
    CONSENT = "leads.consent"
    ERASURE = "leads.erase"
    SCORING_MODEL = "scoring.model"
    SCORES_READ = "scoring.read"
    NURTURE = "nurture"
    ROUTING_CONFIG = "routing.config"
    REASON_CODES_READ = "routing.reason_codes.read"
    HANDOFF = "handoff"
    HANDOFF_READ = "handoff.read"
    SLA_POLICIES = "sla.policies"
    SLA_READ = "sla.read"
    PROCESS = "process"
    REPORTS = "reports"
    TEAM_REPORTS = "reports.team"
    TIMELINE = "leads.timeline"
    CAMPAIGN_COSTS = "campaign_costs"


ALL_ROLES = frozenset(Role)


@dataclass(frozen=True)
class Rule:
    """Who holds a permission. ``own_leads``: roles that hold it for their own leads only
    (the route narrows to ``Principal.rep_id``); ``api_key_scope``: the permission is a
    machine's (an intake API key with that scope), and no person's token is accepted."""

    roles: frozenset[Role]
    meaning: str
    own_leads: frozenset[Role] = frozenset()
    api_key_scope: str | None = None
    public: bool = False


def _r(*roles: Role) -> frozenset[Role]:
    return frozenset(roles)


A, MO, SM, REP, AN = (Role.ADMIN, Role.MARKETING_OPS, Role.SALES_MANAGER, Role.REP, Role.ANALYST)

PERMISSIONS: dict[Permission, Rule] = {
    Permission.PUBLIC: Rule(
        ALL_ROLES, "no credential: web-form posts, health, metrics, sign-in, JWKS", public=True
    ),
    Permission.AUTHENTICATED: Rule(ALL_ROLES, "any signed-in person (who am I)"),
    Permission.OPERATIONS: Rule(_r(A), "dead letters, projection rebuilds"),
    Permission.USERS: Rule(_r(A), "people: users, roles, passwords"),
    Permission.CAPTURE_INQUIRIES: Rule(
        frozenset(), "capture inquiries (API key)", api_key_scope="inquiries"
    ),
    Permission.CAPTURE_SCANS: Rule(
        frozenset(), "badge-scanner batches (API key)", api_key_scope="scans"
    ),
    Permission.CAPTURE_ACTIVITIES: Rule(
        frozenset(), "engagement activity (API key)", api_key_scope="activities"
    ),
    Permission.IMPORTS: Rule(_r(A, MO), "CSV imports"),
    Permission.FORMS: Rule(_r(A, MO), "web forms"),
    Permission.API_KEYS: Rule(_r(A), "intake API keys"),
    Permission.ACCOUNTS: Rule(_r(A, MO), "company accounts for lead-to-account match"),
    Permission.ACCOUNTS_READ: Rule(
        _r(A, MO, SM, AN), "an account's buying group, account score and account waterfall"
    ),
    Permission.LEADS_READ: Rule(_r(A, MO, SM), "a lead's profile (personal fields)"),
    Permission.CONSENT: Rule(_r(A, MO), "record opt-in / opt-out"),
    Permission.ERASURE: Rule(_r(A), "erase a person"),
    Permission.SCORING_MODEL: Rule(_r(A, MO), "scoring model, simulation, predictive"),
    Permission.SCORES_READ: Rule(_r(A, MO, SM, AN), "a lead's score and reasons"),
    Permission.NURTURE: Rule(_r(A, MO), "nurture tracks"),
    Permission.ROUTING_CONFIG: Rule(
        _r(A, SM), "reps, teams, queues, account owners, routing rules, rep tokens"
    ),
    Permission.REASON_CODES_READ: Rule(_r(A, SM, REP), "read the reason codes"),
    Permission.HANDOFF: Rule(
        _r(A, SM, REP),
        "accept, reject, contact, qualify, win, lose, hold, recycle",
        own_leads=_r(REP),
    ),
    Permission.HANDOFF_READ: Rule(_r(A, SM, REP), "queues and assignments", own_leads=_r(REP)),
    Permission.SLA_POLICIES: Rule(_r(A, SM), "SLA policies and business calendars"),
    Permission.SLA_READ: Rule(_r(A, SM, AN), "breaches, compliance, a lead's SLAs"),
    Permission.PROCESS: Rule(
        _r(A, MO, SM), "publish the lead process definition (marketing and sales agree it)"
    ),
    Permission.REPORTS: Rule(
        _r(A, MO, SM, AN), "funnel, velocity, sources, plan, stuck, process map, audit"
    ),
    Permission.TEAM_REPORTS: Rule(_r(A, SM, AN), "reps and teams report"),
    Permission.TIMELINE: Rule(
        _r(A, MO, SM, AN), "a lead's history (personal fields need personal_data for an analyst)"
    ),
    Permission.CAMPAIGN_COSTS: Rule(_r(A, MO), "campaign costs"),
}

# Roles that see personal fields in reports without the personal_data grant.
SEES_PERSONAL_FIELDS = _r(A, MO, SM)


@dataclass(frozen=True)
class Principal:
    """Who is calling. ``kind``: ``user`` (a token of the issuer), ``admin_token``,
    ``rep_token`` (routing's personal tokens), ``api_key``."""

    subject: str
    kind: str
    roles: frozenset[Role]
    rep_id: str | None = None
    grants: frozenset[str] = frozenset()
    email: str | None = None
    name: str | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)

    def can(self, permission: Permission) -> bool:
        rule = PERMISSIONS[permission]
        if rule.public:
            return True
        if rule.api_key_scope is not None:
            return self.kind == "api_key" and rule.api_key_scope in self.scopes
        return bool(self.roles & rule.roles)

    def own_leads(self, permission: Permission) -> str | None:
        """None: every lead; else the rep id whose leads alone this caller may see or act
        on (a rep without a rep id gets ``""``, which owns nothing)."""
        rule = PERMISSIONS[permission]
        if self.roles & (rule.roles - rule.own_leads):
            return None
        return self.rep_id or ""

    @property
    def sees_personal_fields(self) -> bool:
        return bool(self.roles & SEES_PERSONAL_FIELDS) or PERSONAL_DATA in self.grants

    @property
    def claims(self) -> dict[str, Any]:
        return {
            "sub": self.subject,
            "kind": self.kind,
            "roles": sorted(self.roles),
            "grants": sorted(self.grants),
            "rep_id": self.rep_id,
            "email": self.email,
            "name": self.name,
        }


ADMIN_TOKEN_PRINCIPAL = Principal(
    "admin-token", "admin_token", _r(A), grants=frozenset({PERSONAL_DATA})
)

TokenResolver = Callable[["ServiceKit[Any]", str], Awaitable[Principal | None]]
_PRINCIPAL = "leadflow_principal"


@dataclass
class _KitAccess:
    """What access keeps per kit: the service's own token resolvers, the JWT verifier."""

    resolvers: list[TokenResolver] = field(default_factory=list)
    verifier: TokenVerifier | None = None


# Per kit, not on it: the kit (a lower layer) knows nothing of access; gone with the kit.
_PER_KIT: weakref.WeakKeyDictionary[ServiceKit[Any], _KitAccess] = weakref.WeakKeyDictionary()


def _access_of(kit: ServiceKit[Any]) -> _KitAccess:
    found = _PER_KIT.get(kit)
    if found is None:
        found = _PER_KIT[kit] = _KitAccess()
    return found


def add_token_resolver(kit: ServiceKit, resolver: TokenResolver) -> None:
    """A service's own kind of bearer token (routing's ``lfr_`` rep tokens), tried after the
    admin token and JWTs."""
    _access_of(kit).resolvers.append(resolver)


def verifier_of(kit: ServiceKit) -> TokenVerifier:
    access = _access_of(kit)
    verifier = access.verifier
    if verifier is None:
        s = kit.settings
        verifier = TokenVerifier(
            VerifierConfig(
                issuer=s.auth_issuer,
                audience=s.auth_audience,
                jwks_url=s.auth_jwks_url,
                algorithms=tuple(a.strip() for a in s.auth_algorithms.split(",") if a.strip()),
                cache_seconds=s.auth_jwks_cache_seconds,
            )
        )
        access.verifier = verifier
    return verifier


def principal_from_claims(
    claims: dict[str, Any], roles_claim: str = "roles", rep_claim: str = "rep_id"
) -> Principal:
    raw = claim_at(claims, roles_claim)
    if isinstance(raw, str):
        raw = raw.replace(",", " ").split()
    values = {str(v) for v in raw} if isinstance(raw, list) else set()
    rep = claim_at(claims, rep_claim)
    return Principal(
        subject=str(claims["sub"]),
        kind="user",
        roles=frozenset(Role(v) for v in values if v in Role.__members__.values()),
        rep_id=str(rep) if rep not in (None, "") else None,
        grants=frozenset(values & {PERSONAL_DATA}),
        email=claims.get("email"),
        name=claims.get("name"),
    )


def _unauthorized(detail: str, error: str | None = None) -> Problem:
    challenge = "Bearer" + (f' error="{error}"' if error else "")
    return Problem(401, "Unauthorized", detail, headers={"WWW-Authenticate": challenge})


def presented(request: Request) -> str | None:
    """The bearer token of a request (or its ``X-Admin-Token``), if any."""
    auth = request.headers.get("authorization")
    if auth and auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    return request.headers.get("x-admin-token") or None


async def authenticate(request: Request) -> Principal | None:
    """The caller of a request; None without a credential; 401 for one that is not valid."""
    cached = request.scope.get(_PRINCIPAL)
    if isinstance(cached, Principal):
        return cached
    token = presented(request)
    if token is None:
        return None
    kit = kit_of(request)
    principal: Principal | None = None
    if hmac.compare_digest(token.encode(), kit.settings.admin_token.encode()):
        principal = ADMIN_TOKEN_PRINCIPAL
    elif looks_like_jwt(token):
        try:
            claims = await verifier_of(kit).verify(token)
        except InvalidToken as exc:
            raise _unauthorized(str(exc), "invalid_token") from None
        principal = principal_from_claims(
            claims, kit.settings.auth_roles_claim, kit.settings.auth_rep_claim
        )
    else:
        for resolver in _access_of(kit).resolvers:
            principal = await resolver(kit, token)
            if principal is not None:
                break
    if principal is None:
        raise _unauthorized("the token is not valid", "invalid_token")
    request.scope[_PRINCIPAL] = principal
    return principal


_bearer = HTTPBearer(auto_error=False, description="A person's token, or the admin token")


async def authorize(request: Request, permission: Permission) -> Principal:
    """The caller, if they hold ``permission``: 401 without a valid credential, else 403."""
    rule = PERMISSIONS[permission]
    principal = await authenticate(request)
    if principal is None:
        raise _unauthorized("a credential is required (Authorization: Bearer ...)")
    if not principal.can(permission):
        raise Problem(
            403,
            "Forbidden",
            f"permission {permission.value!r} needs one of the roles "
            f"{sorted(r.value for r in rule.roles)}",
        )
    return principal


def requires(permission: Permission) -> Any:
    """The dependency a route declares its permission with; it yields the caller."""
    rule = PERMISSIONS[permission]
    if rule.public or rule.api_key_scope is not None:
        raise ValueError(f"{permission} is not a token permission: use public() or declares()")

    async def check(request: Request, _: Any = Depends(_bearer)) -> Principal:
        return await authorize(request, permission)

    check.__leadflow_permission__ = permission  # type: ignore[attr-defined]
    return Depends(check)


def public() -> Any:
    """Declares a route open to anyone (web-form posts, health, JWKS, sign-in)."""

    async def open_to_all() -> None:
        return None

    open_to_all.__leadflow_permission__ = Permission.PUBLIC  # type: ignore[attr-defined]
    return Depends(open_to_all)


F = TypeVar("F", bound=Callable[..., Any])


def declares(permission: Permission) -> Callable[[F], F]:
    """Marks a service's own credential check (intake's API-key scopes) as the permission
    its routes declare: the check stays the service's, the declaration is the table's."""

    def mark(check: F) -> F:
        check.__leadflow_permission__ = permission  # type: ignore[attr-defined]
        return check

    return mark


# -- introspection (the matrix test and docs/access.md) -------------------------------------


def _declared(dependant: Dependant) -> Iterator[Permission]:
    for dep in dependant.dependencies:
        marked = getattr(dep.call, "__leadflow_permission__", None)
        if marked is not None:
            yield marked
        yield from _declared(dep)


def permission_of(route: APIRoute) -> Permission | None:
    """The route's declared permission; None if it declares none; ValueError for several."""
    found = set(_declared(route.dependant))
    if len(found) > 1:
        raise ValueError(f"{route.path} declares several permissions: {sorted(found)}")
    return found.pop() if found else None


@dataclass(frozen=True)
class DeclaredRoute:
    path: str
    methods: tuple[str, ...]
    permission: Permission | None
    route: APIRoute


def declared_routes(
    routes: Iterable[Any], prefix: str = "", inherited: frozenset[Permission] = frozenset()
) -> Iterator[DeclaredRoute]:
    """Every API route of an app (``app.routes``), included routers' too, with its full path
    and declared permission; a route declaring several is a ValueError."""
    for route in routes:
        if isinstance(route, APIRoute):
            found = set(_declared(route.dependant)) | inherited
            if len(found) > 1:
                raise ValueError(f"{route.path} declares several permissions: {sorted(found)}")
            yield DeclaredRoute(
                prefix + route.path,
                tuple(sorted(route.methods or ())),
                found.pop() if found else None,
                route,
            )
            continue
        nested = getattr(route, "original_router", None)
        if nested is None:
            continue
        context = route.include_context
        marks: set[Permission] = set()
        for dependency in context.dependencies or []:
            mark = getattr(dependency.dependency, "__leadflow_permission__", None)
            if isinstance(mark, Permission):
                marks.add(mark)
        yield from declared_routes(
            nested.routes, prefix + (context.prefix or ""), inherited | frozenset(marks)
        )


def expected(permission: Permission, credential: str) -> bool:
    """Whether ``credential`` (a role name, ``none``, ``admin_token`` or ``api_key``) may
    call a route with this permission: the matrix the docs print and the test asserts."""
    rule = PERMISSIONS[permission]
    if rule.public:
        return True
    if credential == "api_key":
        return rule.api_key_scope is not None
    if rule.api_key_scope is not None or credential == "none":
        return False
    if credential == "admin_token":
        return Role.ADMIN in rule.roles
    return Role(credential) in rule.roles


# Operations (dead letters, projection rebuilds): the admin role, a person's or the admin
# token's. Every other route declares its own permission (above).
AdminDep = requires(Permission.OPERATIONS)
require_admin = AdminDep.dependency
