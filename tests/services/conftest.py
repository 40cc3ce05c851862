"""The service suite runs on SQLite, and on PostgreSQL as well when TEST_DATABASE_URL is
set (tests/databases.py): every test that takes a database fixture, once per database."""

from __future__ import annotations

import pytest

from tests.databases import parametrize_database


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    parametrize_database(metafunc)
