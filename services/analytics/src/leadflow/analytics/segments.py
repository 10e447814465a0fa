"""Segment keys: the values a report's channel/campaign dimensions take besides real ones."""

from __future__ import annotations

UNKNOWN = "(none)"  # segment value for a missing channel/campaign, so GROUP BY keys are never NULL
