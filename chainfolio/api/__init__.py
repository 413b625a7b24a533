"""Everything HTTP and websocket facing: the Starlette app and what it serves.

Here: the app factory and lifespan (`app`), the REST compatibility routes (`rest`), the
seed's `/v1/ws` (`realtime`), the OpenAPI document, JWT authentication (`auth`), rate and
request limits, the answer cache's HTTP side (`answers`) and the request glue (`web`).

May import: every other package of chainfolio but `cli` and `demo`. Nothing below imports it.
"""
