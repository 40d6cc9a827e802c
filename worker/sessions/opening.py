"""Opening on first use: a manager creates its tables and indexes the first time it is called."""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar


class Opens(Protocol):
    @property
    def is_open(self) -> bool: ...

    async def open(self) -> object: ...


P = ParamSpec("P")
T = TypeVar("T")
S = TypeVar("S", bound=Opens)
Method = Callable[Concatenate[S, P], Coroutine[Any, Any, T]]


def opening(method: Method[S, P, T]) -> Method[S, P, T]:
    """`create_session_manager(...)` then calls, with no `open()` first; `async with` still works."""

    @functools.wraps(method)
    async def opened(self: S, /, *args: P.args, **kwargs: P.kwargs) -> T:
        if not self.is_open:
            await self.open()
        return await method(self, *args, **kwargs)

    return opened
