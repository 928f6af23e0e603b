"""retention's edges: the lifecycle events, the operator's commands, and the sweep timer."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import structlog

from libs.contracts import commands as cmd
from libs.contracts.events import (
    PURGE_ANSWERS,
    AuthorizationGiven,
    AuthorizationWithdrawn,
    DocumentDeposited,
    DocumentDepositedV1,
    DocumentHeldBack,
    DocumentReleased,
    HolderDeceased,
    ProxyAppointed,
    ProxyEnded,
    SpaceAnnounced,
    SpaceClosed,
    SpaceDeletionRequested,
    SpaceOpened,
    SpaceReactivated,
)
from libs.runtime import Only, Runtime
from services.retention import service
from services.retention.settings import RetentionSettings

log = structlog.get_logger()

LIFECYCLE_QUEUE = "retention.space-lifecycle"
DOCUMENTS_QUEUE = "retention.documents"
PURGES_QUEUE = "retention.purges"


class Sweeper:
    """Every `interval` seconds, fire the deadlines that have come (by the shared clock).

    It outlives database outages: a failed round is logged and the next one tries again.
    """

    def __init__(
        self, runtime: Runtime[RetentionSettings], interval: float, batch_size: int
    ) -> None:
        self._runtime = runtime
        self._interval = interval
        self._batch_size = batch_size
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"{self._runtime.name}-sweep")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def sweep_once(self) -> int:
        """One round; returns how many deadlines this replica fired. Then the purges some
        service has not answered are asked again."""
        settings = self._runtime.settings
        fired = 0
        while True:
            count = await service.fire_due(
                self._runtime.pool,
                self._runtime.now(),
                self._batch_size,
                proof_key=service.proof_key(settings),
            )
            if count is None:  # another replica holds the sweep lock
                return fired
            fired += count
            if count < self._batch_size:
                break
        await service.request_unanswered(
            self._runtime.pool,
            self._runtime.now(),
            timedelta(seconds=settings.purge_retry_seconds),
            self._batch_size,
        )
        return fired

    async def _run(self) -> None:
        while True:
            try:
                await self.sweep_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the timer must outlive a database outage
                log.warning("sweep_failed", error=repr(exc))
            await asyncio.sleep(self._interval)


def register(runtime: Runtime[RetentionSettings]) -> None:
    settings = runtime.settings
    runtime.on_events(
        LIFECYCLE_QUEUE,
        {
            SpaceAnnounced: service.on_space_announced,
            SpaceOpened: service.on_space_opened,
            SpaceClosed: service.on_space_closed,
            SpaceDeletionRequested: service.on_space_deletion_requested,
            HolderDeceased: service.on_holder_deceased,
            AuthorizationGiven: service.on_authorization_given,
            AuthorizationWithdrawn: service.on_authorization_withdrawn,
            SpaceReactivated: service.on_space_reactivated,
            ProxyAppointed: service.on_proxy_appointed,
            ProxyEnded: service.on_proxy_ended,
        },
    )
    # DOC_07's deadlines, on a queue of their own: a backlog of deposits never delays a space's
    # lifecycle.
    runtime.on_events(
        DOCUMENTS_QUEUE,
        {
            # RET_03: only the occupational health part's deposits are visits.
            DocumentDeposited: Only(service.on_document_deposited, service.is_a_visit),
            DocumentDepositedV1: Only(service.on_document_deposited, service.is_a_visit),
            DocumentHeldBack: service.on_document_held_back,
            DocumentReleased: service.on_document_released,
        },
    )
    # RET_01: each service's answer to a purge, for the proof of deletion.
    runtime.on_events(PURGES_QUEUE, dict.fromkeys(PURGE_ANSWERS.values(), service.on_holder_purged))
    runtime.handle(cmd.ListDeadlines, service.list_deadlines)
    runtime.handle(cmd.GetPurgeProof, service.get_purge_proof)
    sweeper = Sweeper(runtime, settings.sweep_interval_seconds, settings.sweep_batch_size)
    runtime.add_background(sweeper.start, sweeper.stop)
