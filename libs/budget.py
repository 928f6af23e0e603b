"""How many bytes of requests a service works on at once.

RabbitMQ's prefetch counts messages, not bytes. What a service holds in its deliveries is bounded
by its queues' limits (requests over `SMALL_REQUEST_BYTES` come by a large lane, `large_prefetch`
at a time, libs/contracts/rpc.py); what it works on, by this budget: a document costs a few
times its size while it is parsed, decoded, sealed and written. A service takes a request's
size from its budget before working on it and gives it back when done; a request that does not
fit waits, in its delivery, for those in progress to finish (one larger than the whole budget
waits to run alone). Small requests pass beside the large ones: only large ones ever wait for
each other.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class ByteBudget:
    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("a byte budget needs at least one byte")
        self.capacity = capacity
        self.in_use = 0
        self._freed = asyncio.Condition()
        self._waiting = 0

    @contextlib.asynccontextmanager
    async def held(self, size: int) -> AsyncIterator[None]:
        """Hold `size` bytes (at most the whole budget) for the block."""
        size = min(max(size, 0), self.capacity)
        if self.in_use + size > self.capacity:
            self._waiting += 1
            try:
                async with self._freed:
                    await self._freed.wait_for(lambda: self.in_use + size <= self.capacity)
            finally:
                self._waiting -= 1
        self.in_use += size  # no await since the check: no one else took it meanwhile
        try:
            yield
        finally:
            self.in_use -= size
            if self._waiting:
                async with self._freed:
                    self._freed.notify_all()
