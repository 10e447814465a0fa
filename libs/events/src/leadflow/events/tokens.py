"""Verifying people's tokens against the configured issuer (the local console by default).

Every service trusts one issuer (``LEADFLOW_AUTH_ISSUER``): it reads the issuer's signing
keys from its JWKS (``LEADFLOW_AUTH_JWKS_URL``, or the ``jwks_uri`` of its OpenID discovery
document), caches them, and fetches them again when a token names a key id it does not know
(the issuer rotated its key) — at most once per ``refetch_interval``, so a stream of forged
key ids cannot turn into a stream of requests to the issuer. Pointing Leadflow at Keycloak,
Entra ID or Okta is therefore configuration: their issuer URL, their audience, and the claim
that carries roles (``LEADFLOW_AUTH_ROLES_CLAIM``, a dotted path such as
``realm_access.roles``).

Only asymmetric algorithms are accepted: a service holds public keys and can verify, never
sign; ``none`` and HMAC are refused whatever a token's header says.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import jwt

log = logging.getLogger("leadflow.tokens")

ASYMMETRIC = frozenset({"EdDSA", "RS256", "RS384", "RS512", "PS256", "ES256", "ES384"})


class InvalidToken(Exception):
    """The token is not one the configured issuer signed, or no longer valid; the message
    says why (it goes into the 401's detail, never the token)."""


@dataclass(frozen=True)
class VerifierConfig:
    issuer: str
    audience: str = "leadflow"
    jwks_url: str = ""
    algorithms: Sequence[str] = ("EdDSA", "RS256")
    cache_seconds: float = 3600.0
    refetch_interval: float = 10.0
    leeway_seconds: float = 30.0
    http_timeout: float = 5.0


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("ey")


def claim_at(claims: Mapping[str, Any], path: str) -> Any:
    """A claim by dotted path (``realm_access.roles``); None when any step is missing."""
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


class TokenVerifier:
    """Verifies a JWT against the issuer's JWKS; keys cached and refreshed on unknown kid."""

    def __init__(self, config: VerifierConfig) -> None:
        self.config = config
        self.algorithms = [a for a in config.algorithms if a in ASYMMETRIC]
        if not self.algorithms:
            raise ValueError(f"no asymmetric algorithm among {list(config.algorithms)}")
        self._keys: dict[str, jwt.PyJWK] = {}
        self._static: dict[str, jwt.PyJWK] = {}
        self._fetched_at = 0.0  # monotonic; 0: never
        self._lock = asyncio.Lock()

    def add_local_keys(self, jwks: Mapping[str, Any]) -> None:
        """Keys this process holds itself (the console's own): no HTTP round trip for them;
        any other key id is still looked up at the issuer."""
        self._static.update(_parse_jwks(jwks))

    async def verify(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"malformed token: {exc}") from None
        alg = header.get("alg")
        if alg not in self.algorithms:
            raise InvalidToken(f"algorithm {alg!r} is not accepted")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("the token names no key id (kid)")
        key = await self._key(kid)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                issuer=self.config.issuer,
                audience=self.config.audience or None,
                leeway=self.config.leeway_seconds,
                options={
                    "require": ["exp", "iat", "iss", "sub"],
                    "verify_aud": bool(self.config.audience),
                },
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("the token has expired") from None
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"invalid token: {exc}") from None
        return claims

    async def _key(self, kid: str) -> jwt.PyJWK:
        if kid in self._static:
            return self._static[kid]
        stale = time.monotonic() - self._fetched_at > self.config.cache_seconds
        if kid in self._keys and not stale:
            return self._keys[kid]
        async with self._lock:
            since = time.monotonic() - self._fetched_at
            if (kid not in self._keys and since > self.config.refetch_interval) or (
                since > self.config.cache_seconds
            ):
                await self._refresh()
        if kid not in self._keys:
            raise InvalidToken(f"unknown signing key {kid!r}")
        return self._keys[kid]

    async def _refresh(self) -> None:
        self._fetched_at = time.monotonic()  # a failure waits for the next interval too
        try:
            async with httpx.AsyncClient(timeout=self.config.http_timeout) as client:
                url = self.config.jwks_url or await self._discover(client)
                response = await client.get(url)
                response.raise_for_status()
                self._keys = _parse_jwks(response.json())
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            # Keep the keys we had: an issuer briefly away must not sign everyone out.
            log.warning(
                "could not fetch the issuer's JWKS (%r); keeping %d key(s)", exc, len(self._keys)
            )

    async def _discover(self, client: httpx.AsyncClient) -> str:
        url = self.config.issuer.rstrip("/") + "/.well-known/openid-configuration"
        response = await client.get(url)
        response.raise_for_status()
        jwks_uri = response.json()["jwks_uri"]
        if not isinstance(jwks_uri, str):
            raise ValueError("discovery document without a jwks_uri")
        return jwks_uri


def _parse_jwks(jwks: Mapping[str, Any]) -> dict[str, jwt.PyJWK]:
    keys: dict[str, jwt.PyJWK] = {}
    for entry in jwks.get("keys", []):
        if entry.get("use", "sig") != "sig" or not entry.get("kid"):
            continue
        try:
            keys[entry["kid"]] = jwt.PyJWK(entry)
        except jwt.PyJWTError as exc:
            log.warning("skipping JWKS key %s: %s", entry.get("kid"), exc)
    return keys
