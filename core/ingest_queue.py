"""The ingest writer's waiting room: requests queued by integration and served round-robin.

One transaction holds one batch, and the writer applies batches one at a time. Served first come, first
served, a 1,000-alert push holds every other integration's events behind it for as long as its own take
to commit. Served round-robin, each batch takes at most `share` events from each integration with
events waiting, so a big push is applied in slices and every other integration's waiting events go into
the next batch. Within an integration, events keep their arrival order.

Pure bookkeeping: no database, no clock; the writer (core/ingest.py) runs the transactions.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Generic, TypeVar

R = TypeVar("R")


@dataclass(frozen=True, eq=False)
class Slice(Generic[R]):
    """Events [start, stop) of one request, applied in one batch."""

    request: R
    start: int
    stop: int


@dataclass(eq=False)
class _Entry(Generic[R]):
    request: R
    size: int
    handed: int = 0  # events handed to batches so far


@dataclass
class FairQueue(Generic[R]):
    """Requests waiting for the writer, served round-robin by integration (see the module docstring).

    `share` bounds what one integration puts into one batch; `max_batch` bounds the batch.
    """

    share: int
    max_batch: int
    # Integration id -> its requests in arrival order. Dict order is the round-robin order: an integration
    # served in a batch goes to the back, one that starts waiting joins at the back.
    _waiting: dict[int, deque[_Entry[R]]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self._waiting)

    def put(self, integration_id: int, request: R, size: int) -> None:
        """Queue a request of `size` events behind its integration's earlier ones."""
        if size > 0:
            self._waiting.setdefault(integration_id, deque()).append(_Entry(request, size))

    def take(self) -> list[Slice[R]]:
        """The next batch: one round over the waiting integrations, up to `share` events from each."""
        batch: list[Slice[R]] = []
        size = 0
        for integration_id in list(self._waiting):
            if size >= self.max_batch:
                break
            queue = self._waiting.pop(integration_id)
            budget = min(self.share, self.max_batch - size)
            while queue and budget:
                entry = queue[0]
                n = min(budget, entry.size - entry.handed)
                batch.append(Slice(entry.request, entry.handed, entry.handed + n))
                entry.handed += n
                budget -= n
                size += n
                if entry.handed == entry.size:
                    queue.popleft()
            if queue:
                self._waiting[integration_id] = queue
        return batch

    def drop(self, integration_id: int, request: R) -> None:
        """Forget what of a request has not been handed to a batch yet (it failed: the rest must not apply)."""
        queue = self._waiting.get(integration_id)
        if queue is None:
            return
        for entry in [e for e in queue if e.request is request]:
            queue.remove(entry)
        if not queue:
            del self._waiting[integration_id]
