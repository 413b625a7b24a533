"""`chainfolio demo` as a real process: history, performance, live changes, clean stop, re-run."""

from __future__ import annotations

import asyncio
import json
import os
from decimal import Decimal
from pathlib import Path

import pytest
import websockets

from chainfolio.devnet import set_price, transfer_native
from tests.dashboard.harness import (
    HANG_GUARD_S,
    DemoProcess,
    start_demo,
    stop_demo,
    wait_until,
)

TOTAL = "{ portfolio { totalValue chains { chainId stale } holdings { asset price } } }"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_demo_user_has_wallets_history_and_performance(demo: DemoProcess) -> None:
    assert demo.info["backfilledSnapshots"] == 90 * 24
    data = demo.gql(
        """{ wallets { chainId address }
             portfolio { totalValue chains { chainId stale } }
             daily: history(period: "90d", interval: "1d") { timestamps values gaps }
             hourly: history(period: "90d", interval: "1h") { timestamps }
             performance(period: "90d") { deposits withdrawals twr mwr sharpeRatio maxDrawdown
                                          roi absoluteGain } }"""
    )
    assert {w["chainId"] for w in data["wallets"]} == {1, 137, 42161}
    assert len(data["wallets"]) == 6
    assert Decimal(data["portfolio"]["totalValue"]) > 100_000
    assert not any(c["stale"] for c in data["portfolio"]["chains"])
    assert len(data["daily"]["timestamps"]) >= 89
    assert data["daily"]["gaps"] == []
    assert len(data["hourly"]["timestamps"]) >= 90 * 24 - 1
    performance = data["performance"]
    assert performance["deposits"] > 0 > performance["withdrawals"]  # the back-filled flows
    for key in ("twr", "mwr", "sharpeRatio", "maxDrawdown", "roi"):
        assert performance[key] is not None, key
    # Flow-neutral: the deposits are not gains, so TWR differs from the raw value change.
    assert -60 < performance["twr"] < 80
    assert performance["maxDrawdown"] < 0
    assert all(Decimal(v) > 0 for v in data["daily"]["values"])


async def _next_total(demo: DemoProcess, act: object) -> Decimal:
    """Subscribe (graphql-transport-ws), run `act` in a thread once the subscription is on the
    bus (graphql-transport-ws has no acknowledgement for it), return the first pushed total."""
    before = await asyncio.to_thread(demo.subscribers)
    url = demo.url.replace("http://", "ws://") + "/graphql"
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        init = {"Authorization": f"Bearer {demo.token}"}
        await ws.send(json.dumps({"type": "connection_init", "payload": init}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(
            json.dumps(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {"query": "subscription { portfolioUpdates { totalValue } }"},
                }
            )
        )
        subscribed = lambda: demo.subscribers() > before  # noqa: E731
        await asyncio.to_thread(wait_until, subscribed, "the subscription to reach the bus")
        await asyncio.to_thread(act)  # type: ignore[arg-type]
        async with asyncio.timeout(HANG_GUARD_S):  # a guard against hanging, not a limit
            while True:
                message = json.loads(await ws.recv())
                if message["type"] == "next":
                    return Decimal(message["payload"]["data"]["portfolioUpdates"]["totalValue"])


async def test_a_devnet_transfer_reaches_subscribers(demo: DemoProcess) -> None:
    before = demo.gql(TOTAL)["portfolio"]
    eth_price = next(Decimal(h["price"]) for h in before["holdings"] if h["asset"] == "ETH")
    chain = demo.chains[137]
    outsider, mine = chain.wallets[-1], demo.info["tracked"]["137"][0]

    def deposit() -> None:
        transfer_native(chain, sender=outsider, to=mine, amount=10**18)

    total = await _next_total(demo, deposit)
    assert total - Decimal(before["totalValue"]) == eth_price  # exactly one ETH more
    assert Decimal(demo.gql(TOTAL)["portfolio"]["totalValue"]) == total


def test_demo_moves_by_itself_stops_cleanly_and_does_not_backfill_twice(
    tmp_path: Path,
) -> None:
    first = start_demo(tmp_path, "--tick", "0.5", "--chains", "1,137")
    try:
        assert first.info["backfilledSnapshots"] == 90 * 24
        totals = {first.gql(TOTAL)["portfolio"]["totalValue"]}

        def moved() -> bool:  # the ticker moves prices and funds: the total changes
            totals.add(first.gql(TOTAL)["portfolio"]["totalValue"])
            return len(totals) >= 3

        wait_until(moved, "the demo's ticker to change the total twice")
    finally:
        code = stop_demo(first)
    assert code == 0, first.log()
    assert not [pid for pid in first.info["nodePids"] if _alive(pid)]
    # embedded PostgreSQL stopped (failed once in a full run, unexplained: show the demo's log)
    assert not (tmp_path / "pgdata" / "postmaster.pid").exists(), first.log()
    assert "Traceback" not in first.log()

    second = start_demo(tmp_path, "--tick", "0", "--chains", "1,137")
    try:
        assert second.info["backfilledSnapshots"] == 0
        history = second.gql('{ history(period: "90d", interval: "1h") { timestamps } }')
        assert len(history["history"]["timestamps"]) >= 90 * 24 - 1
        assert len(second.gql("{ wallets { id } }")["wallets"]) == 4  # not added twice
    finally:
        assert stop_demo(second) == 0, second.log()
    assert not [pid for pid in second.info["nodePids"] if _alive(pid)]


ETH_PRICE = "{ portfolio { holdings { asset price } } }"


def _eth_price(demo: DemoProcess) -> Decimal | None:
    holdings = demo.gql(ETH_PRICE)["portfolio"]["holdings"]
    return next((Decimal(h["price"]) for h in holdings if h["asset"] == "ETH"), None)


def test_a_restarted_demo_continues_its_prices_on_a_chain_it_knows_is_new(tmp_path: Path) -> None:
    """The second start runs fresh chains funded as the first were (about $100 k into the
    tracked wallets): the worker re-bases on them once, recording no flow (the worker's own
    tests check the flows), and ETH resumes at its last stored price, not the deployment's."""
    first = start_demo(tmp_path, "--tick", "0", "--chains", "1")
    try:
        set_price(first.chains[1], "ETH", 3_456_78000000)
        wait_until(lambda: _eth_price(first) == Decimal("3456.78"), "the new price")
        since = first.info["historySince"]
    finally:
        assert stop_demo(first) == 0, first.log()

    second = start_demo(tmp_path, "--tick", "0", "--chains", "1")
    try:
        assert second.info["backfilledSnapshots"] == 0
        assert second.info["historySince"] == since  # the oldest row's hour, as announced
        assert f"kept from earlier runs, since {since}" in second.log()
        wait_until(
            lambda: "is not the chain scanned before" in second.log(),
            "the worker to notice the chain was replaced",
        )
        assert _eth_price(second) == Decimal("3456.78")
        assert second.log().count("is not the chain scanned before") == 1
    finally:
        assert stop_demo(second) == 0, second.log()


@pytest.mark.parametrize("signal_name", ["SIGINT"])
def test_ctrl_c_stops_everything(tmp_path: Path, signal_name: str) -> None:
    import signal  # noqa: PLC0415

    demo = start_demo(tmp_path, "--tick", "0", "--chains", "1")
    demo.process.send_signal(getattr(signal, signal_name))
    assert demo.process.wait() == 0, demo.log()
    assert not [pid for pid in demo.info["nodePids"] if _alive(pid)]
    assert not (tmp_path / "pgdata" / "postmaster.pid").exists()


def test_demo_wallets_hold_uniswap_positions_in_and_out_of_range(demo: DemoProcess) -> None:
    data = demo.gql(
        """{ portfolio { positions { id protocol chainId inRange valueUsd
                                     legs { asset category amount } } } }"""
    )
    positions = data["portfolio"]["positions"]
    assert len(positions) == 4  # two per tracked wallet on the first chain
    assert {p["protocol"] for p in positions} == {"uniswap-v3"}
    assert sorted(p["inRange"] for p in positions) == [False, False, True, True]
    for position in positions:
        assert {(leg["asset"], leg["category"]) for leg in position["legs"]} == {
            ("WETH", "DEPOSIT"),
            ("USDC", "DEPOSIT"),
            ("WETH", "REWARD"),
            ("USDC", "REWARD"),
        }
        assert Decimal(position["valueUsd"]) > 0
