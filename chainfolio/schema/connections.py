"""Relay cursor connections: a page of any list with its cursors and `pageInfo`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

import strawberry

from chainfolio.resolvers.pages import DEFAULT_PAGE, MAX_PAGE, Page

T = TypeVar("T")


R = TypeVar("R")


FIRST = f"Page size, 1 to {MAX_PAGE} (default {DEFAULT_PAGE})."


AFTER = "The `endCursor` of the previous page; none for the first page."


@strawberry.type(description="Where a page of a connection sits in the whole list.")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type(description="One item of a connection and its cursor.")
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type(description="A page of a list (Relay cursor connection).")
class Connection(Generic[T]):
    edges: list[Edge[T]]
    page_info: PageInfo
    total_count: int = strawberry.field(description="Items in the whole list, all pages.")

    @classmethod
    def of(cls, page: Page[R], node: Callable[[R], T]) -> Connection[T]:
        """From a resolver's page, each item made a node by `node`."""
        return cls(
            edges=[Edge(cursor=c, node=node(item)) for c, item in page.edges],
            page_info=PageInfo(
                has_next_page=page.has_next_page,
                has_previous_page=page.has_previous_page,
                start_cursor=page.edges[0][0] if page.edges else None,
                end_cursor=page.end_cursor,
            ),
            total_count=page.total_count,
        )
