"""Servers that tests and benchmarks restart get ports below the kernel's ephemeral range, so
a client connection's local end can never be holding the port when the server comes back."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from leadflow.devstack import procs
from leadflow.devstack.kafka import KafkaBroker


def test_free_ports_lie_below_the_range_client_connections_draw_from() -> None:
    low = procs.ephemeral_low()
    for _ in range(20):
        assert 21000 <= procs.free_port() < low
        base = procs.free_block(6)
        assert base >= 21000 and base + 6 <= low
        assert all(procs.port_free(base + i) for i in range(6))


def test_a_taken_port_is_not_free() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        assert not procs.port_free(sock.getsockname()[1])


def test_a_block_that_cannot_be_found_says_so() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        taken = sock.getsockname()[1]
        with pytest.raises(RuntimeError, match="no block of 1 free ports"):
            procs.free_block(1, low=taken, high=taken + 1)


def test_the_ranges_start_is_read_from_the_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    class Range:
        def __init__(self, _path: str) -> None:
            pass

        def read_text(self) -> str:
            return "40000\t60999\n"

    monkeypatch.setattr(procs, "Path", Range)
    assert procs.ephemeral_low() == 40000


def test_a_broker_without_ports_takes_free_ones(tmp_path: Path) -> None:
    broker = KafkaBroker(tmp_path)
    assert broker.port < procs.ephemeral_low()
    assert broker.controller_port < procs.ephemeral_low()
