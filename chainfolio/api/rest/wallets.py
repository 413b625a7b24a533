"""REST wallets: list, add, remove."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from chainfolio.api.answers import cached_route
from chainfolio.api.rest.envelope import (
    caller_of,
    changed,
    json_body,
    ok,
    page_params,
    paged,
)
from chainfolio.api.web import services_of
from chainfolio.core.errors import InvalidInput
from chainfolio.resolvers import wallets as wallets_resolver
from chainfolio.storage import accounts
from chainfolio.storage.accounts import Wallet


def _wallet_json(row: Wallet) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "chainId": row.chain_id,
        "address": row.address,
        "label": row.label,
        "createdAt": row.created_at.isoformat(),
    }


@cached_route(caller_of)
async def list_wallets(request: Request) -> Response:
    """GET /v1/wallets — all of them, or a page with ?limit=&cursor= (then with `page`)."""
    caller = await caller_of(request)
    limit, cursor = page_params(request)
    async with services_of(request).engine.connect() as db:
        if limit is None and cursor is None:  # the unpaged answer, byte for byte as before
            rows = await accounts.list_wallets(db, user_id=caller.user_id)
            return ok([_wallet_json(r) for r in rows])
        page = await wallets_resolver.wallets_page(
            db, user_id=caller.user_id, first=limit, after=cursor
        )
    return paged([_wallet_json(r) for _, r in page.edges], page)


async def add_wallet(request: Request) -> Response:
    """POST /v1/wallets {chainId, address, label?}."""
    caller = await caller_of(request)
    services = services_of(request)
    data = await json_body(request)
    chain_id, address, label = data.get("chainId"), data.get("address"), data.get("label")
    if not isinstance(chain_id, int) or isinstance(chain_id, bool):
        raise InvalidInput("chainId must be an integer", code="INVALID_CHAIN")
    if not isinstance(address, str):
        raise InvalidInput("address must be a string", code="INVALID_ADDRESS")
    if label is not None and not isinstance(label, str):
        raise InvalidInput("label must be a string", code="INVALID_LABEL")
    async with services.engine.begin() as db:
        row = await wallets_resolver.add_wallet(
            db,
            user_id=caller.user_id,
            chain_id=chain_id,
            address=address,
            label=label,
            chains=services.chains,
            max_wallets=services.settings.max_wallets_per_user,
        )
    await changed(request, caller, wallets=True)
    return ok(_wallet_json(row), status=201)


async def remove_wallet(request: Request) -> Response:
    """DELETE /v1/wallets/{id}."""
    caller = await caller_of(request)
    async with services_of(request).engine.begin() as db:
        await wallets_resolver.remove_wallet(
            db, user_id=caller.user_id, wallet_id=request.path_params["wallet_id"]
        )
    await changed(request, caller, wallets=True)
    return ok({"removed": request.path_params["wallet_id"]})
