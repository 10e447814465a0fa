"""How the rebuild splits the log into chunk transactions."""

from __future__ import annotations

from leadflow.analytics.rebuild import chunk_size


def sizes(chunk_events: int, remaining: int) -> list[int]:
    out = []
    while remaining > 0:
        size = chunk_size(chunk_events, remaining)
        out.append(min(size, remaining))
        remaining -= size
    return out


def test_full_chunks_and_a_small_remainder_joins_the_last_chunk() -> None:
    assert sizes(250_000, 1_027_099) == [250_000, 250_000, 250_000, 277_099]


def test_a_remainder_of_more_than_a_quarter_gets_its_own_chunk() -> None:
    assert sizes(100, 325) == [100, 100, 125]
    assert sizes(100, 326) == [100, 100, 100, 26]


def test_a_log_grown_since_the_start_is_read_in_full_chunks() -> None:
    # ``remaining`` is estimated from the head at the start: it may run out early.
    assert chunk_size(100, 0) == 100
    assert chunk_size(100, -5) == 100
