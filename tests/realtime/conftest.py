"""One `chainfolio serve` process on the session database for a module's websocket tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.api.conftest import SECRET
from tests.servers import serve


@pytest.fixture(scope="module")
def served(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The process's base URL (`http://…`)."""
    env = {
        "CHAINFOLIO_DATABASE_URL": database_url,
        "CHAINFOLIO_JWT_SECRET": SECRET,
        "CHAINFOLIO_DATA_DIR": str(tmp_path_factory.mktemp("serve")),
    }
    with serve(env) as base:
        yield base
