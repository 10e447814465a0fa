"""How the rebuild splits the log into chunk transactions."""

from __future__ import annotations

from leadflow.analytics.rebuild import chunk_size


def sizes(chunk_events: int, remaining: int) -> list[int]:
    out: list[int] = []
    while remaining > 0:
        size = chunk_size(chunk_events, remaining, first=not out)
        out.append(min(size, remaining))
        remaining -= size
    return out


def test_the_first_and_the_last_chunk_are_a_fifth_the_ones_between_full() -> None:
    # The ends overlap nothing (the first fold, the last write): they are kept small.
    assert sizes(250_000, 1_027_099) == [50_000, 250_000, 250_000, 250_000, 177_099, 50_000]
    assert sizes(100, 325) == [20, 100, 100, 85, 20]


def test_a_short_log_is_still_split_so_its_fold_and_write_overlap() -> None:
    assert sizes(250_000, 100_000) == [50_000, 50_000]
    assert sizes(250_000, 200_000) == [50_000, 100_000, 50_000]


def test_no_chunk_is_much_smaller_than_an_end_chunk() -> None:
    # A chunk costs a whole merge round (its statements read the full tables): a remainder
    # of up to a quarter more joins the last chunk, a longer one under two is halved.
    assert sizes(100, 25) == [25]
    assert sizes(100, 26) == [13, 13]
    assert sizes(100, 145) == [20, 100, 25]
    assert sizes(100, 146) == [20, 100, 13, 13]


def test_a_log_grown_since_the_start_is_read_in_full_chunks() -> None:
    # ``remaining`` is estimated from the head at the start: it may run out early.
    assert chunk_size(100, 0) == 100
    assert chunk_size(100, -5) == 100
