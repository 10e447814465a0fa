"""Why a command (an API action) cannot happen, as the API answers it. Pure: the routes map
it to problem+json (``api.common.refused``)."""

from __future__ import annotations

from leadflow.events.errors import CommandRefused

# The kernel's one refusal type, re-exported where this service's commands are.
__all__ = ["CommandRefused"]
