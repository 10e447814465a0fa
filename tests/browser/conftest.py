"""Browser tests: Debian's chromium driven by Playwright; the console's tests drive the whole
platform started as real processes (``e2e_stack``)."""

from __future__ import annotations

from tests.e2e.conftest import e2e_stack

__all__ = ["e2e_stack"]
