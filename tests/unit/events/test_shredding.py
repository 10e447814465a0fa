"""Crypto-shredding keeps stored events valid: a required text field that is personal (a
hold's reason, typed by a rep) is sealed behind the payload's own placeholder, so the event
still validates once its key is gone."""

from __future__ import annotations

import uuid

from leadflow.events import shredding
from leadflow.events.catalogue.routing import LeadPutOnHold


def test_a_hold_reason_is_sealed_and_an_erased_hold_still_validates() -> None:
    key, event_id = shredding.new_key(), uuid.uuid4()
    data = LeadPutOnHold(reason="call back after parental leave", rep_id="r1").model_dump(
        mode="json"
    )
    fields = LeadPutOnHold.personal_fields
    sealed = shredding.seal(key, event_id, data, fields, LeadPutOnHold.erased_placeholders)
    assert "parental" not in str({k: v for k, v in sealed.items() if k != shredding.SEALED})
    assert sealed["reason"] == "" and sealed["rep_id"] == "r1"
    assert shredding.unseal(key, sealed) == data
    erased = shredding.unseal(None, sealed)
    assert LeadPutOnHold.model_validate(erased).reason == ""
    stripped = shredding.strip(data, fields, LeadPutOnHold.erased_placeholders)
    assert LeadPutOnHold.model_validate(stripped).reason == ""


def test_fields_without_a_placeholder_become_empty_objects_or_null() -> None:
    data = {"contact": {"email": "jane@acme.com"}, "notes": "met at booth", "rating": "hot"}
    stripped = shredding.strip(data, frozenset({"contact", "notes"}))
    assert stripped == {"contact": {}, "notes": None, "rating": "hot"}
