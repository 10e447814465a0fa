"""Intake's crypto-shredding is the kernel's (``leadflow.events.shredding``), shared with
routing; this module keeps intake's imports where they were."""

from leadflow.events.shredding import (
    SEALED,
    LeadKeyCodec,
    ensure_keys,
    new_key,
    reset_keys,
    seal,
    shred,
    strip,
    unseal,
    use_keys,
)

__all__ = [
    "SEALED",
    "LeadKeyCodec",
    "ensure_keys",
    "new_key",
    "reset_keys",
    "seal",
    "shred",
    "strip",
    "unseal",
    "use_keys",
]
