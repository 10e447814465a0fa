"""Reps' personal tokens: their form, and the digest that is all routing stores of them."""

from __future__ import annotations

import hashlib
import secrets

REP_TOKEN_PREFIX = "lfr_"


def new_rep_token() -> tuple[str, str]:
    """(token_id, token): ``lfr_<id>_<secret>``. The id names the token in lists and
    revocations without revealing it; the secret is 256 random bits."""
    token_id = secrets.token_hex(6)
    return token_id, f"{REP_TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"


def rep_token_digest(token: str) -> bytes:
    """What is stored of a token: its SHA-256 (a leaked table lets nobody act as a rep)."""
    return hashlib.sha256(token.encode()).digest()


def looks_like_rep_token(token: str) -> bool:
    return token.startswith(REP_TOKEN_PREFIX) and token.count("_") >= 2
