"""The typed per-request GraphQL context."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from strawberry.types import Info as StrawberryInfo

from chainfolio.core.errors import Unauthorized
from chainfolio.resolvers.context import Caller, Services


@dataclass
class Context:
    """Services of the process and the caller; `caller` is None until authenticated."""

    services: Services
    caller_: Caller | None = None
    request: Any = None
    response: Any = None
    connection_params: dict[str, Any] | None = field(default=None)

    @property
    def caller(self) -> Caller:
        """The authenticated user, or Unauthorized."""
        if self.caller_ is None:
            raise Unauthorized("missing bearer token: send 'Authorization: Bearer <JWT>'")
        return self.caller_


Info = StrawberryInfo[Context, None]
