"""``:name`` parameters become asyncpg's ``$n``, and nothing else does: casts, quoted
literals, quoted identifiers, dollar quotes and comments keep their colons."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leadflow.events.sql import compile_named


@pytest.mark.parametrize(
    ("sql", "compiled", "names"),
    [
        ("SELECT :a, :b", "SELECT $1, $2", ("a", "b")),
        ("SELECT :a + :a", "SELECT $1 + $1", ("a",)),  # one name used twice is one $n
        ("SELECT :a::jsonb", "SELECT $1::jsonb", ("a",)),
        ("SELECT x::text FROM t", "SELECT x::text FROM t", ()),
        ("SELECT CAST(:a AS int)", "SELECT CAST($1 AS int)", ("a",)),
        ("SELECT ':a' || :b", "SELECT ':a' || $1", ("b",)),
        ("SELECT 'it''s :a' || :b", "SELECT 'it''s :a' || $1", ("b",)),
        ("SELECT E'it\\'s :a', :b", "SELECT E'it\\'s :a', $1", ("b",)),
        ('SELECT ":a" FROM t WHERE c = :c', 'SELECT ":a" FROM t WHERE c = $1', ("c",)),
        ("SELECT 1 -- :a\n, :b", "SELECT 1 -- :a\n, $1", ("b",)),
        ("SELECT 1 /* :a /* :x */ :y */ , :b", "SELECT 1 /* :a /* :x */ :y */ , $1", ("b",)),
        ("SELECT $$ :a $$, :b", "SELECT $$ :a $$, $1", ("b",)),
        ("SELECT $q$ :a $ $q$, :b", "SELECT $q$ :a $ $q$, $1", ("b",)),
        ("SELECT a[1:2], a[lo:hi] FROM t", "SELECT a[1:2], a[lo:hi] FROM t", ()),
        ("SELECT a[:lo:2]", "SELECT a[$1:2]", ("lo",)),
        ("SELECT '\\:a' , \\:b", "SELECT '\\:a' , :b", ()),  # \: is a literal colon
        ("SELECT :a_1, :_b", "SELECT $1, $2", ("a_1", "_b")),
        ("SELECT :a, :b, :a", "SELECT $1, $2, $1", ("a", "b")),
        ("SELECT ':a", "SELECT ':a", ()),  # unterminated: left to Postgres to refuse
        ("SELECT now()::timestamptz::date = :d", "SELECT now()::timestamptz::date = $1", ("d",)),
        ("SELECT :1", "SELECT :1", ()),
        (
            "INSERT INTO t VALUES (:a) ON CONFLICT DO NOTHING",
            "INSERT INTO t VALUES ($1) ON CONFLICT DO NOTHING",
            ("a",),
        ),
    ],
)
def test_compiles(sql: str, compiled: str, names: tuple[str, ...]) -> None:
    c = compile_named(sql)
    assert (c.sql, c.names) == (compiled, names)


def test_compiled_once_per_text() -> None:
    assert compile_named("SELECT :cached") is compile_named("SELECT :cached")


def test_arguments_follow_the_positions_and_a_missing_name_is_named() -> None:
    c = compile_named("SELECT :b, :a, :b")
    assert c.args({"a": 1, "b": 2, "unused": 3}) == [2, 1]
    with pytest.raises(TypeError, match=":a"):
        c.args({"b": 2})


_NAME = st.from_regex(r"[a-z_][a-z0-9_]{0,6}", fullmatch=True)
_PLAIN = st.text(alphabet=" ,()+=<>0123456789abcdefxyz\n", max_size=8)
_OPAQUE = st.one_of(
    st.builds(
        lambda t: "'" + t.replace("'", "''") + "'", st.text(alphabet="ab: '$-*/", max_size=8)
    ),
    st.builds(lambda t: '"' + t + '"', st.text(alphabet="ab: $-*/'", max_size=8)),
    st.builds(lambda t: "-- " + t + "\n", st.text(alphabet="ab: '$\"*/", max_size=8)),
    st.builds(lambda t: "/* " + t + " */", st.text(alphabet="ab: '$\"-", max_size=8)),
    st.builds(lambda t: "$x$" + t + "$x$", st.text(alphabet="ab: '\"-*/", max_size=8)),
    st.just("::int"),
    st.just("::jsonb[]"),
)


@given(
    st.lists(
        st.one_of(
            _PLAIN.map(lambda t: ("plain", t)),
            _OPAQUE.map(lambda t: ("opaque", t)),
            _NAME.map(lambda n: ("param", n)),
        ),
        max_size=12,
    )
)
def test_parameters_and_only_parameters_are_replaced(parts: list[tuple[str, str]]) -> None:
    sql_parts: list[str] = []
    expected_parts: list[str] = []
    names: list[str] = []
    for kind, text in parts:
        if kind == "param":
            if names and sql_parts and re.search(r"\w$", sql_parts[-1]):
                sql_parts.append(" ")
                expected_parts.append(" ")
            if text not in names:
                names.append(text)
            sql_parts.append(f":{text} ")
            expected_parts.append(f"${names.index(text) + 1} ")
        else:
            # keep a word from running into what follows (``x::int`` stays a cast, a
            # plain ``a`` before ``'...'`` does not make an E-string by accident)
            sql_parts.append(" " + text + " ")
            expected_parts.append(" " + text + " ")
    compiled = compile_named("".join(sql_parts))
    assert compiled.sql == "".join(expected_parts)
    assert compiled.names == tuple(names)
