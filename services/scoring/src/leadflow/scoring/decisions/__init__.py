"""Scoring's decisions, pure functions of (lead state, event or timer, batch context): no I/O,
no clock, so they are unit-tested with plain values (tests/unit/scoring/test_decisions*.py).

``events.decide`` decides a consumed event; ``timers`` the decay and nurture timers and a
publish's re-score; ``evaluate`` is the re-score every one of them ends in; ``draft`` is a
decision in the making.
"""

from __future__ import annotations

from leadflow.scoring.decisions.events import decide

__all__ = ["decide"]
