"""Publish/subscribe between processes: backends chosen by URL and the Redis subscriber.

`broadcast` holds the `Bus` interface with its `memory://` and `redis://` backends and the
channel names; `subscriber` is the bus's own hiredis reader of one Redis subscription.

May import: `chainfolio.core` only.
"""
