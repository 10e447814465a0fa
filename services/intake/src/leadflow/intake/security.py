"""Edge security: API keys (generated, shown once, stored as SHA-256), scopes, rate limits."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

Scope = Literal["inquiries", "scans", "activities", "admin"]
SCOPES: frozenset[str] = frozenset({"inquiries", "scans", "activities", "admin"})
KEY_PREFIX = "lf_"
V = TypeVar("V")


def generate_api_key() -> str:
    """256 bits of randomness; the ``lf_`` prefix makes leaked keys easy to grep for."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    # A fast hash is right here: keys are random 256-bit secrets, not guessable passwords.
    return hashlib.sha256(key.encode()).hexdigest()


def display_prefix(key: str) -> str:
    return key[:10]


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    name: str
    scopes: frozenset[str]
    device_id: str | None
    revoked: bool

    @property
    def device(self) -> str:
        return self.device_id or self.key_id


class TtlCache(Generic[V]):
    """Values by key for a few seconds, so a hot path costs no extra query. Requests that
    miss together share ONE load: when an entry expires under load, every request in flight
    missed it at once, and each used to open its own connection for the same row."""

    def __init__(self, ttl: float, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, V]] = OrderedDict()
        self._loading: dict[str, asyncio.Task[V]] = {}
        self._generation = 0

    async def lookup(self, key: str, load: Callable[[], Awaitable[V]]) -> V:
        """The cached value, else ``load()`` it (once for all who wait)."""
        entry = self._entries.get(key)
        if entry is not None and time.monotonic() - entry[0] <= self.ttl:
            return entry[1]
        task = self._loading.get(key)
        if task is None:
            task = asyncio.ensure_future(self._load(key, load, self._generation))
            self._loading[key] = task
        # shield: one cancelled request must not cancel the load the others wait for.
        return await asyncio.shield(task)

    async def _load(self, key: str, load: Callable[[], Awaitable[V]], generation: int) -> V:
        try:
            value = await load()
            # A change (clear/forget) while loading: the answer may predate it; don't keep it.
            if generation == self._generation:
                self.put(key, value)
            return value
        finally:
            if self._loading.get(key) is asyncio.current_task():
                del self._loading[key]

    def get(self, key: str) -> tuple[bool, V | None]:
        entry = self._entries.get(key)
        if entry is None or time.monotonic() - entry[0] > self.ttl:
            return False, None
        return True, entry[1]

    def put(self, key: str, value: V) -> None:
        self._entries[key] = (time.monotonic(), value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def forget(self, key: str) -> None:
        """This replica changed ``key``: the next request loads it again."""
        self._generation += 1
        self._entries.pop(key, None)
        self._loading.pop(key, None)

    def clear(self) -> None:
        self._generation += 1
        self._entries.clear()
        self._loading.clear()


class KeyCache(TtlCache[ApiKey | None]):
    """Verified API keys by hash (``None``: no such key)."""


class RateLimiter:
    """Token buckets per subject (a key id or an IP): ``rate`` per second, ``burst`` deep.

    In-process: each replica limits on its own, which bounds a client at replicas x rate;
    that is the usual trade against a shared store on every request.
    """

    def __init__(self, rate: float, burst: int, max_subjects: int = 100_000) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.max_subjects = max_subjects
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def check(self, subject: str, cost: float = 1.0, now: float | None = None) -> float | None:
        """Take ``cost`` tokens; ``None`` when allowed, else seconds until it would be."""
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.get(subject, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens >= cost:
            self._buckets[subject] = (tokens - cost, now)
            self._buckets.move_to_end(subject)
            if len(self._buckets) > self.max_subjects:
                self._buckets.popitem(last=False)
            return None
        self._buckets[subject] = (tokens, now)
        return (cost - tokens) / self.rate if self.rate > 0 else 3600.0
