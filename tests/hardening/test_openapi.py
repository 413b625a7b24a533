"""`/openapi.json` documents exactly the served REST operations; unknown routes and methods
answer in the envelope too."""

from __future__ import annotations

from starlette.routing import Route

from tests.hardening.conftest import OpenClient


async def test_document_lists_the_served_operations(open_client: OpenClient) -> None:
    async with open_client() as client:
        document = (await client.get("/openapi.json")).json()
        app_routes = client._transport.app.routes  # type: ignore[attr-defined]
    served = {
        (route.path, method.lower())
        for route in app_routes
        if isinstance(route, Route) and route.path.startswith("/v1/")
        for method in route.methods or ()
        if method != "HEAD"
    }
    documented = {(path, method) for path, item in document["paths"].items() for method in item}
    assert document["openapi"].startswith("3.")
    assert {p for p in documented if p[0].startswith("/v1/")} == served
    history = document["paths"]["/v1/portfolio/history"]["get"]
    assert {p["name"] for p in history["parameters"]} == {"period", "interval", "currency"}
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert document["paths"]["/healthz"]["get"]["security"] == []


async def test_unknown_routes_and_methods_answer_in_the_envelope(open_client: OpenClient) -> None:
    async with open_client() as client:
        missing = await client.get("/v1/nothing-here")
        assert missing.status_code == 404
        assert missing.json() == {
            "success": False,
            "error": {"code": "NOT_FOUND", "message": "Not Found"},
        }
        wrong = await client.patch("/v1/wallets")
        assert wrong.status_code == 405
        assert wrong.json()["error"]["code"] == "METHOD_NOT_ALLOWED"
        assert "GET" in wrong.headers["Allow"]
