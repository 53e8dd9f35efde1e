"""Ordered handler registrations: first match wins, most specific first, the help menu last."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from handlers.core.filters import Filter, pending
from handlers.core.reply import Reply, as_list

if TYPE_CHECKING:
    from handlers.core.context import ChatContext
    from handlers.core.message import Inbound

HandlerResult = Reply | list[Reply] | None
Handler = Callable[..., Awaitable[HandlerResult]]


@dataclass(frozen=True)
class Route:
    name: str
    handler: Handler
    filters: tuple[Filter, ...]
    catch_all: bool = False  # answers only what no other route took (a flow keeps such a message)


class Router:
    def __init__(self, name: str = "root") -> None:
        self.name = name
        self.routes: list[Route] = []

    def add(self, handler: Handler, *filters: Filter, name: str | None = None, catch_all: bool = False) -> None:
        """All filters must pass; their extracted values become keyword arguments."""
        self.routes.append(Route(name or handler.__name__, handler, filters, catch_all))

    def on(self, *filters: Filter, name: str | None = None) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.add(handler, *filters, name=name)
            return handler

        return register

    def include(self, other: Router) -> None:
        self.routes.extend(other.routes)

    async def match(self, msg: Inbound, ctx: ChatContext) -> tuple[Route, dict[str, Any]] | None:
        for route in self.routes:
            found: dict[str, Any] = {}
            for flt in route.filters:
                result = flt(msg, ctx)  # run_filter's work, without a coroutine per filter
                if pending(result):
                    result = await result
                if not result:
                    break
                if isinstance(result, dict):
                    found.update(result)
            else:
                return route, found
        return None

    async def dispatch(self, msg: Inbound, ctx: ChatContext) -> list[Reply]:
        """Run the first matching handler; records its name on the context as the intent."""
        return await self.run(await self.match(msg, ctx), msg, ctx)

    @staticmethod
    async def run(matched: tuple[Route, dict[str, Any]] | None, msg: Inbound, ctx: ChatContext) -> list[Reply]:
        """Run a route `match` found (nothing: no reply); records its name on the context as the intent."""
        if matched is None:
            ctx.intent = "unmatched"
            return as_list(None)
        route, found = matched
        ctx.intent = route.name
        return as_list(await route.handler(msg, ctx, **found))
