"""Without a token nothing executes: the GraphiQL page is static, every query needs a token."""

from __future__ import annotations

from tests.hardening.conftest import OpenClient, bearer

INTROSPECTION = "{ __schema { queryType { name } } }"


async def test_graphiql_page_is_static_and_queries_need_a_token(open_client: OpenClient) -> None:
    html = {"Accept": "text/html"}
    async with open_client() as http:
        page = await http.get("/graphql", headers=html)
        assert page.status_code == 200
        assert "graphiql" in page.text.lower()
        for params in ({"query": INTROSPECTION}, {"query": "{ __typename }"}):
            for accept in ("text/html", "application/json", "*/*"):
                answer = await http.get("/graphql", params=params, headers={"Accept": accept})
                assert answer.status_code == 401, (params, accept, answer.text)
                assert "queryType" not in answer.text
        posted = await http.post("/graphql", json={"query": INTROSPECTION})
        assert posted.status_code == 401
        assert posted.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        allowed = await http.post(
            "/graphql", json={"query": INTROSPECTION}, headers=bearer("introspector")
        )
        assert allowed.json()["data"]["__schema"]["queryType"]["name"] == "Query"
