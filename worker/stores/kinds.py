"""The kinds of store, in one registry: how each opens and what it needs. The factory and the test
backends derive from it; its keys are the storage setting's values (worker.config.Storage),
checked below. A new kind: its store module, one entry here, its name in Storage, its test backend."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, get_args

from worker.config import Storage
from worker.stores.base import SessionStore


class StoreOptions(Protocol):
    """What opening a store may read (ManagerOptions has these, as do the tests' stores)."""

    @property
    def db_path(self) -> str: ...
    @property
    def mongodb_url(self) -> str | None: ...
    @property
    def mongodb_database(self) -> str: ...


@dataclass(frozen=True, slots=True)
class StoreKind:
    opens: Callable[[StoreOptions], SessionStore]  # no I/O: ensure_schema() connects
    # StoreOptions it cannot open without (a server's URL, say), each with an example value.
    needs: tuple[tuple[str, str], ...] = ()


def _sqlite(options: StoreOptions) -> SessionStore:
    from worker.stores.sqlite import SqliteStore

    return SqliteStore.at_path(options.db_path)


def _mongodb(options: StoreOptions) -> SessionStore:
    from worker.stores.mongo import MongoStore

    if options.mongodb_url is None:
        raise ValueError("storage 'mongodb' needs mongodb_url")
    return MongoStore.from_url(options.mongodb_url, options.mongodb_database)


KINDS: dict[Storage, StoreKind] = {
    "sqlite": StoreKind(_sqlite),
    "mongodb": StoreKind(_mongodb, needs=(("mongodb_url", "mongodb://localhost:27017"),)),
}
if set(KINDS) != set(get_args(Storage)):
    raise ImportError(f"store kinds {sorted(KINDS)} and the Storage values {get_args(Storage)} differ")


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
