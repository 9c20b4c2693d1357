"""Benchmarks record what ran: backend path, dtype, threads and library versions."""
import pytest

from fusenn.bench import peer_versions


@pytest.fixture(scope="session")
def versions():
    return peer_versions()
