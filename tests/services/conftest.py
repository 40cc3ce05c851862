"""The service suite runs on SQLite, and on PostgreSQL as well when TEST_DATABASE_URL is
set (tests/databases.py): every test that takes a database fixture, once per database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from services.tracking import Kuaidi100Provider
from tests.databases import parametrize_database
from tests.services.fake_kuaidi100 import CUSTOMER as KUAIDI100_CUSTOMER
from tests.services.fake_kuaidi100 import KEY as KUAIDI100_KEY
from tests.services.fake_kuaidi100 import FakeKuaidi100

# The tracking tests talk to a local fake kuaidi100: a proxy in the environment must not
# carry those requests elsewhere.
PROXY_VARIABLES = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    parametrize_database(metafunc)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeKuaidi100]:
    """A local fake kuaidi100 (tests/services/fake_kuaidi100.py), one per test module."""
    server = FakeKuaidi100()
    with server.running():
        yield server


@pytest.fixture
def provider(fake: FakeKuaidi100) -> Kuaidi100Provider:
    return Kuaidi100Provider(KUAIDI100_CUSTOMER, KUAIDI100_KEY, fake.url, timeout=5.0)
