"""The bus's own Redis subscription connection against real redis-server processes: confirmed
subscriptions, AUTH, unix sockets, a frozen server noticed by its PING, bad messages."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis.asyncio as redis

from chainfolio.bus.broadcast import Bus
from chainfolio.bus.subscriber import RedisSubscriber, command
from tests.fixtures.redis import RedisServer
from tests.servers import free_port


class Inbox:
    """What a subscriber delivered, awaitable."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, str]] = []
        self._arrived = asyncio.Event()

    def __call__(self, channel: str, data: str) -> None:
        self.messages.append((channel, data))
        self._arrived.set()

    async def next(self, wait: float = 5.0) -> tuple[str, str]:
        async with asyncio.timeout(wait):
            while not self.messages:
                self._arrived.clear()
                await self._arrived.wait()
        return self.messages.pop(0)


async def _until(condition: Callable[[], bool], wait: float = 10.0) -> None:
    async with asyncio.timeout(wait):
        while not condition():  # noqa: ASYNC110 - polls the subscriber's counters
            await asyncio.sleep(0.02)


async def _connected(subscriber: RedisSubscriber, times: int = 1) -> None:
    await _until(lambda: subscriber.connections >= times)


async def _publish_until(
    publisher: redis.Redis, channel: str, *, receivers: int, wait: float = 10.0
) -> None:
    """Publish "hello" on `channel` until Redis reports `receivers` receivers."""
    async with asyncio.timeout(wait):
        while True:
            with contextlib.suppress(redis.ConnectionError):
                if await publisher.publish(channel, "hello") == receivers:
                    return
            await asyncio.sleep(0.05)


def test_commands_are_resp_arrays() -> None:
    assert command(b"SUBSCRIBE", "a", "bc") == b"*3\r\n$9\r\nSUBSCRIBE\r\n$1\r\na\r\n$2\r\nbc\r\n"
    assert command("PING") == b"*1\r\n$4\r\nPING\r\n"


async def test_a_confirmed_subscription_gets_the_next_publish(redis_server: RedisServer) -> None:
    # No sleep between subscribe and publish: subscribe returns once Redis has confirmed it.
    inbox = Inbox()
    subscriber = RedisSubscriber(redis_server.url, inbox)
    await subscriber.start()
    publisher = redis.Redis.from_url(redis_server.url)
    try:
        await _connected(subscriber)
        for i in range(50):
            await subscriber.subscribe(f"confirm:{i}")
            assert await publisher.publish(f"confirm:{i}", f"m{i}") == 1
            assert await inbox.next() == (f"confirm:{i}", f"m{i}")
        await subscriber.subscribe("confirm:0")  # already subscribed: returns at once
        subscriber.unsubscribe("confirm:1")
        await _publish_until(publisher, "confirm:1", receivers=0)
        await subscriber.subscribe("confirm:1")  # and back
        assert await publisher.publish("confirm:1", "again") == 1
        assert await inbox.next() == ("confirm:1", "again")
        assert inbox.messages == []
    finally:
        await subscriber.stop()
        await publisher.aclose()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own (to freeze, to configure)."""
    server = RedisServer(free_port(), tmp_path)
    server.start()
    yield server
    server.stop()


async def test_a_second_subscribe_waits_for_the_same_confirmation(
    own_redis: RedisServer,
) -> None:
    # Redis frozen (SIGSTOP) between the SUBSCRIBE and its answer: a second caller for the
    # same channel must not return early because the channel is already "known".
    subscriber = RedisSubscriber(own_redis.url, Inbox(), confirm_s=30, idle_s=30)
    await subscriber.start()
    try:
        with own_redis.frozen():
            callers = [asyncio.ensure_future(subscriber.subscribe("both:u")) for _ in range(2)]
            done, _ = await asyncio.wait(callers, timeout=0.5)
            assert not done  # both wait for Redis
        await asyncio.wait_for(asyncio.gather(*callers), 5)
    finally:
        await subscriber.stop()


async def test_local_subscribers_share_one_redis_channel(redis_server: RedisServer) -> None:
    publisher = redis.Redis.from_url(redis_server.url)
    async with (
        Bus(redis_server.url) as api,
        api.subscribe("both:u") as first,
        api.subscribe("both:u") as second,
    ):
        assert await publisher.publish("both:u", "x") == 1  # one connection per process
        assert await asyncio.wait_for(first.get(), 5) == "x"
        assert await asyncio.wait_for(second.get(), 5) == "x"
    await publisher.aclose()


async def test_bad_messages_do_not_stop_the_reader(redis_server: RedisServer) -> None:
    delivered: list[tuple[str, str]] = []

    def deliver(channel: str, data: str) -> None:
        if data == "boom":
            raise RuntimeError("a consumer bug")
        delivered.append((channel, data))

    subscriber = RedisSubscriber(redis_server.url, deliver)
    await subscriber.start()
    publisher = redis.Redis.from_url(redis_server.url)
    try:
        await _connected(subscriber)
        await subscriber.subscribe("bad:c")
        await publisher.publish("bad:c", b"\xff\xfe not utf-8")
        await publisher.publish("bad:c", "boom")
        await publisher.publish("bad:c", "after")
        await _until(lambda: len(delivered) == 2)
        assert delivered == [("bad:c", "\ufffd\ufffd not utf-8"), ("bad:c", "after")]
        assert subscriber.connections == 1
    finally:
        await subscriber.stop()
        await publisher.aclose()


@pytest.fixture
def secured_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(
        free_port(), tmp_path, password="s3cret-pass", unixsocket=tmp_path / "redis.sock"
    )
    server.start()
    yield server
    server.stop()


async def test_auth_and_unix_socket(secured_redis: RedisServer) -> None:
    publisher = redis.Redis.from_url(secured_redis.url)
    try:
        for url in (
            secured_redis.url,
            f"unix://:{secured_redis.password}@{secured_redis.unixsocket}",
            f"redis://default:{secured_redis.password}@127.0.0.1:{secured_redis.port}/0",
        ):
            inbox = Inbox()
            subscriber = RedisSubscriber(url, inbox)
            await subscriber.start()
            try:
                await _connected(subscriber)
                await subscriber.subscribe("auth:c")
                await publisher.publish("auth:c", url)
                assert await inbox.next() == ("auth:c", url)
            finally:
                await subscriber.stop()

        # A wrong password: refused, retried, never connected, and stoppable.
        wrong = RedisSubscriber(f"redis://:nope@127.0.0.1:{secured_redis.port}/0", Inbox())
        await wrong.start()  # gives up waiting after its connect timeout
        await wrong.subscribe("auth:c")  # without a connection: returns, subscribed later
        assert wrong.connections == 0
        await wrong.stop()
    finally:
        await publisher.aclose()


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[RedisServer]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed (needed for a test certificate)")
    pem = tmp_path / "redis.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
         "-keyout", str(pem), "-out", str(tmp_path / "cert.pem")],
        check=True, capture_output=True,
    )  # fmt: skip
    pem.write_text(pem.read_text() + (tmp_path / "cert.pem").read_text())
    server = RedisServer(free_port(), tmp_path, tls=pem)
    server.start()
    yield server
    server.stop()


async def test_tls(tls_redis: RedisServer) -> None:
    publisher = redis.Redis.from_url(tls_redis.url)
    plain = f"redis://localhost:{tls_redis.port}/0"
    unverified = f"rediss://localhost:{tls_redis.port}/0?ssl_cert_reqs=none"
    untrusted = f"rediss://localhost:{tls_redis.port}/0"  # a self-signed certificate
    try:
        for url in (tls_redis.url, unverified):
            inbox = Inbox()
            subscriber = RedisSubscriber(url, inbox)
            await subscriber.start()
            try:
                await subscriber.subscribe("tls:c")
                await publisher.publish("tls:c", url)
                assert await inbox.next() == ("tls:c", url)
            finally:
                await subscriber.stop()
        for url in (plain, untrusted):  # refused: never connected, and stoppable
            refused = RedisSubscriber(url, Inbox(), connect_timeout_s=0.5)
            await refused.start()
            assert refused.connections == 0
            await refused.stop()
    finally:
        await publisher.aclose()


async def test_a_frozen_redis_is_noticed_by_ping_and_the_channels_come_back(
    own_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    # SIGSTOP: the kernel still holds the TCP connection, but nothing answers, as with a
    # server gone without a FIN. The idle PING goes unanswered and the subscriber reconnects;
    # once the server runs again every channel is subscribed on the new connection.
    inbox = Inbox()
    subscriber = RedisSubscriber(
        own_redis.url, inbox, idle_s=0.3, answer_s=0.3, connect_timeout_s=0.3, confirm_s=0.3
    )
    await subscriber.start()
    publisher = redis.Redis.from_url(own_redis.url)
    try:
        await _connected(subscriber)
        await subscriber.subscribe("frozen:c")
        caplog.set_level(logging.WARNING, logger="chainfolio.bus.subscriber")
        with own_redis.frozen():
            # idle, PING, no answer, a reconnect attempt times out: waited for as it happens,
            # not for a fixed time (a resumed server would answer a PING still pending)
            def logged(text: str) -> Callable[[], bool]:
                return lambda: any(text in r.getMessage() for r in caplog.records)

            await _until(logged("Redis connection lost"))
            await _until(logged("cannot reach Redis"))
            await subscriber.subscribe("frozen:d")  # meanwhile: asked again on reconnect
        await _connected(subscriber, 2)
        for channel in ("frozen:c", "frozen:d"):
            await _publish_until(publisher, channel, receivers=1)
        got = {await inbox.next(), await inbox.next()}
        assert got == {("frozen:c", "hello"), ("frozen:d", "hello")}
    finally:
        await subscriber.stop()
        await publisher.aclose()
