"""The kinds of store, in one registry: the storage setting, the factory and the test backends
all derive from it. A new kind is its store module plus one entry here (and its test backend)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol, get_args

if TYPE_CHECKING:  # the settings import this module: at run time it imports no store until one opens
    from worker.stores.base import SessionStore

# The storage setting's values: KINDS' keys (checked below, so the two cannot drift apart).
Storage = Literal["sqlite", "mongodb"]


class StoreOptions(Protocol):
    """What opening a store may read (ManagerOptions has these, as do the tests' stores)."""

    @property
    def db_path(self) -> str: ...
    @property
    def mongodb_url(self) -> str | None: ...
    @property
    def mongodb_database(self) -> str: ...
    @property
    def commit_window_ms(self) -> float: ...


@dataclass(frozen=True, slots=True)
class StoreKind:
    summary: str  # what it is for, in the storage setting's description
    opens: Callable[[StoreOptions], SessionStore]  # no I/O: ensure_schema() connects
    # StoreOptions it cannot open without (a server's URL, say), each with an example value.
    needs: tuple[tuple[str, str], ...] = ()


def _sqlite(options: StoreOptions) -> SessionStore:
    from worker.stores.sqlite import SqliteStore

    return SqliteStore.at_path(options.db_path, commit_window_ms=options.commit_window_ms)


def _mongodb(options: StoreOptions) -> SessionStore:
    from worker.stores.mongo import MongoStore

    if options.mongodb_url is None:
        raise ValueError("storage 'mongodb' needs mongodb_url")
    return MongoStore.from_url(options.mongodb_url, options.mongodb_database, commit_window_ms=options.commit_window_ms)


KINDS: dict[Storage, StoreKind] = {
    "sqlite": StoreKind("embedded, one machine", _sqlite),
    "mongodb": StoreKind("scale-out", _mongodb, needs=(("mongodb_url", "mongodb://localhost:27017"),)),
}
if set(KINDS) != set(get_args(Storage)):
    raise ImportError(f"store kinds {sorted(KINDS)} and the Storage values {get_args(Storage)} differ")


def describe_kinds() -> str:
    """The storage setting's description: each kind and what it is for."""
    return " or ".join(f"{name} ({kind.summary})" for name, kind in KINDS.items())


def missing_options(storage: Storage, options: StoreOptions) -> str | None:
    """Why `storage` cannot open with `options` (a needed option is unset), or None."""
    for name, example in KINDS[storage].needs:
        if not getattr(options, name):
            return f"storage {storage!r} needs {name} (e.g. {example})"
    return None


def open_store(storage: Storage, options: StoreOptions) -> SessionStore:
    """The store of that kind, not yet opened (its ensure_schema() connects)."""
    problem = missing_options(storage, options)
    if problem is not None:
        raise ValueError(problem)
    return KINDS[storage].opens(options)
