"""Rules compiled once per model (``domain.model.predicate``, ``domain.score.compiled``)
answer exactly as the interpreted rules did: every operator against every kind of attribute
value (text with blanks and case, numbers, numeric text, flags, missing), and the built-in
model's engagement rules matched through the activity-type index as rule by rule."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

from leadflow.scoring.builtin import default_model
from leadflow.scoring.domain import Activity
from leadflow.scoring.domain.model import (
    Condition,
    Op,
    _as_number,
    _domain_matches,
    condition_holds,
)
from leadflow.scoring.domain.score import _rule_matches, compiled

ACTUALS: list[Any] = [
    None, "", "  ", "VP Sales", " vp sales ", "Chief Executive Officer", "200", " 200 ", "abc",
    "acme.com", "mail.acme.com", "other.org", 200, 200.0, 199.5, 1000, 0, True, False,
]  # fmt: skip
VALUES: list[Any] = [
    None, "vp sales", ["VP", "chief"], "200", 200.0, [100.0, 500.0], ["acme.com"], True, "",
    ["200", "abc"],
]  # fmt: skip


def interpreted(cond: Condition, attrs: dict[str, Any]) -> bool:
    """``condition_holds`` as it was before rules were compiled (the reference)."""
    actual = attrs.get(cond.attribute)
    if isinstance(actual, str):
        actual = actual.strip() or None
    op = cond.op
    if op == "present":
        return actual is not None and actual is not False
    if op == "absent":
        return actual is None
    if op == "is_true":
        return actual is True
    if op == "is_false":
        return actual is False
    values = cond.value if isinstance(cond.value, list) else [cond.value]
    lowered = frozenset(str(v).lower() for v in values if v is not None)
    if op in {"ne", "not_in"}:
        return actual is None or str(actual).lower() not in lowered
    if actual is None:
        return False
    text = str(actual).lower()
    if op in {"eq", "in"}:
        number = _as_number(actual)
        if number is not None and not isinstance(actual, str):
            return any(_as_number(v) == number for v in values)
        return text in lowered
    if op in {"contains", "contains_any"}:
        return any(v in text for v in lowered)
    if op == "domain_in":
        return _domain_matches(text, lowered)
    number = _as_number(actual)
    if number is None:
        return False
    bounds = [_as_number(v) for v in values]
    if op == "gte":
        return bounds[0] is not None and number >= bounds[0]
    if op == "lte":
        return bounds[0] is not None and number <= bounds[0]
    if op == "between":
        return bounds[0] is not None and bounds[1] is not None and bounds[0] <= number <= bounds[1]
    return False


def test_every_operator_answers_as_the_interpreted_condition() -> None:
    checked = 0
    for op, value in itertools.product(get_args(Op), VALUES):
        if op == "between" and not (isinstance(value, list) and len(value) == 2):
            continue  # a model's between has two bounds (validation)
        cond = Condition(attribute="a", op=op, value=value)
        for actual in ACTUALS:
            attrs = {"a": actual}
            assert condition_holds(cond, attrs) is interpreted(cond, attrs), (op, value, actual)
            checked += 1
        assert condition_holds(cond, {}) is interpreted(cond, {})
    assert checked > 2000


def test_the_type_index_matches_what_each_rule_matches() -> None:
    model = default_model()
    now = datetime(2026, 3, 2, tzinfo=UTC)
    kinds = {t for rule in model.engagement_rules for t in rule.activity_types} | {"unknown"}
    acts = [
        Activity(kind, now - timedelta(hours=i), url=url, properties=props)
        for i, (kind, url, props) in enumerate(
            itertools.product(
                sorted(kinds), [None, "https://x.example/pricing"], [{}, {"rating": "HOT"}]
            )
        )
    ]
    by_rule = compiled(model).matches(acts)
    for i, rule in enumerate(model.engagement_rules):
        expected = [a for a in acts if _rule_matches(rule, a)]
        assert by_rule.get(i, []) == expected, rule.id
    assert len(by_rule) == len(model.engagement_rules)  # every rule matched something here
    assert compiled(model) is compiled(model)  # once per model object
