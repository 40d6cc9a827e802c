"""A session's model override: checked against its agent's allow-list, then stored on the session."""

from __future__ import annotations

from schemas import AgentSettings, SessionEntry
from worker.engine.clock import Clock
from worker.errors import InvalidArgument, SessionNotFound
from worker.sessions.agents import AgentDirectory
from worker.stores.base import SessionRecords

MAX_MODEL_NAME = 200


def check_model(settings: AgentSettings, model: str) -> None:
    """Refuses a model outside the agent's allow-list (an empty list allows any)."""
    if not model.strip() or len(model) > MAX_MODEL_NAME:
        raise InvalidArgument(f"a model name is 1 to {MAX_MODEL_NAME} characters")
    if settings.allowed_models and model not in settings.allowed_models:
        allowed = ", ".join(settings.allowed_models)
        raise InvalidArgument(f"model {model!r} is not available here; choose one of: {allowed}")


class ModelChoice:
    def __init__(self, agents: AgentDirectory, store: SessionRecords, clock: Clock) -> None:
        self._agents = agents
        self._store = store
        self._clock = clock

    async def set(self, session: SessionEntry, model: str | None) -> None:
        """Store the session's model override (None: back to the agent's default), once allowed; every
        turn event of the session then carries it, so the agent runtime answers with that model."""
        if model is not None:
            model = model.strip()
            check_model(await self._agents.get(session.agent_id), model)
        if not await self._store.set_model(session.id, model, self._clock()):
            raise SessionNotFound(f"no session {session.id}")
