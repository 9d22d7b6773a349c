"""Micro-batching: concurrent calls are grouped and run through one batch function in a worker thread.

    batcher = MicroBatcher(encode_many, max_size=32, max_wait_s=0.002, name="retrieval-batch")
    batcher.start()                      # in the lifespan, on the serving event loop
    result = await batcher.submit(item)  # from any `async def` endpoint
    await batcher.aclose()

A worker task takes the first waiting item, then keeps collecting until the batch holds `max_size`
(by `weight`, default 1 per item) or `max_wait_s` has passed since that first item, and hands the
batch to `fn` in a dedicated single-thread executor. Model and index work therefore never runs on
the event loop, and one service runs one batch at a time, so its thread budget (TensorFlow, FAISS)
holds however many requests are in flight. While a batch runs, new items queue up and form the
next batch: under load batches fill without waiting at all.

`fn(items)` returns one entry per item, in order: that item's result, or an `Exception` instance
that becomes that caller's error alone. If `fn` raises for a batch of several items, each item is
run again on its own, so one bad item cannot fail its neighbours; an error that every item hits
reaches every caller. `fn` must therefore be safe to call again (pure inference is).

Pure Python and asyncio: no TensorFlow or FAISS here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


class BatcherClosed(RuntimeError):
    """The batcher is not running (not started yet, or shut down with the call still waiting)."""


@dataclass
class BatchStats:
    """Counters since start: how many batches ran, how many items they held, the largest batch."""

    batches: int = 0
    items: int = 0
    largest: int = 0


@dataclass
class _Pending(Generic[T, R]):
    item: T
    weight: int
    future: asyncio.Future[R]


class MicroBatcher(Generic[T, R]):
    """Collects concurrent `submit()` calls into batches for `fn`, run one at a time in a worker thread.

    Args:
        fn: maps a list of items to a list of results (or `Exception` instances) of the same length.
        max_size: most total weight per batch; an item heavier than this runs alone.
        max_wait_s: how long a batch may wait for more items after its first one arrived (0: take
            only what is already queued).
        name: names the worker task and thread, and log lines.
        weight: an item's share of `max_size` (e.g. the number of questions in a request).

    Raises:
        ValueError: `max_size` < 1 or `max_wait_s` < 0.
    """

    def __init__(
        self,
        fn: Callable[[list[T]], Sequence[R | Exception]],
        *,
        max_size: int,
        max_wait_s: float,
        name: str = "batcher",
        weight: Callable[[T], int] | None = None,
    ) -> None:
        if max_size < 1:
            raise ValueError(f"max_size must be >= 1, got {max_size}")
        if max_wait_s < 0:
            raise ValueError(f"max_wait_s must be >= 0, got {max_wait_s}")
        self._fn = fn
        self.max_size = max_size
        self.max_wait_s = max_wait_s
        self.name = name
        self._weight = weight or (lambda _item: 1)
        self.stats = BatchStats()
        self._queue: asyncio.Queue[_Pending[T, R]] | None = None
        self._carry: _Pending[T, R] | None = None  # collected but did not fit the previous batch
        self._held: list[_Pending[T, R]] = []  # off the queue, not answered yet (collecting or running)
        self._worker: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker on the running event loop (call from the lifespan)."""
        if self._worker is not None:
            raise RuntimeError(f"{self.name} is already started")
        self._queue = asyncio.Queue()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self.name)
        self._worker = asyncio.get_running_loop().create_task(self._run(), name=f"{self.name}-worker")

    async def aclose(self) -> None:
        """Stop the worker; calls still waiting fail with `BatcherClosed`."""
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
        closed = BatcherClosed(f"{self.name} shut down before this call ran")
        waiting = list(self._held) + ([self._carry] if self._carry else [])
        while self._queue is not None and not self._queue.empty():
            waiting.append(self._queue.get_nowait())
        for pending in waiting:
            if not pending.future.done():
                pending.future.set_exception(closed)
        self._held, self._carry = [], None
        if self._executor is not None:
            # Don't wait for a batch still running in the thread: its results have nowhere to go.
            self._executor.shutdown(wait=False, cancel_futures=True)

    # -- calls -------------------------------------------------------------------------------

    async def submit(self, item: T) -> R:
        """Queue `item` for the next batch and wait for its own result (or its own error)."""
        if self._worker is None or self._worker.done() or self._queue is None:
            raise BatcherClosed(f"{self.name} is not running")
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(item, self._weight(item), future))
        # A caller that goes away (client disconnect, timeout) cancels `future`; the worker skips it.
        return await future

    # -- worker ------------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            batch = [p for p in await self._collect() if not p.future.done()]
            if not batch:
                continue
            try:
                results = await asyncio.get_running_loop().run_in_executor(
                    self._executor, self._call, [p.item for p in batch]
                )
            except Exception as exc:  # a bug in this module, not in fn: fail the batch, keep serving
                logger.exception("%s: batch of %d failed unexpectedly", self.name, len(batch))
                results = [exc] * len(batch)
            self._held = []  # kept on cancellation, so that aclose() can fail these calls
            self.stats.batches += 1
            self.stats.items += len(batch)
            self.stats.largest = max(self.stats.largest, len(batch))
            for pending, result in zip(batch, results):
                if pending.future.done():  # cancelled while the batch ran
                    continue
                if isinstance(result, BaseException):
                    pending.future.set_exception(result)
                else:
                    pending.future.set_result(result)

    async def _collect(self) -> list[_Pending[T, R]]:
        """The next batch: the first waiting item, then more until full or `max_wait_s` is up."""
        assert self._queue is not None
        first = self._carry if self._carry is not None else await self._queue.get()
        self._carry = None
        batch, size = [first], first.weight
        self._held = batch  # the same list: aclose() sees what is collected so far
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait_s
        while size < self.max_size:
            try:
                pending = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                if loop.time() >= deadline:
                    break
                try:
                    async with asyncio.timeout_at(deadline):
                        pending = await self._queue.get()
                except TimeoutError:
                    break
            if size + pending.weight > self.max_size:
                self._carry = pending  # first in line for the next batch
                break
            batch.append(pending)
            size += pending.weight
        return batch

    def _call(self, items: list[T]) -> list[R | Exception]:
        """Runs in the worker thread: `fn` on the batch, or item by item if the batch call raises."""
        try:
            results = list(self._fn(items))
            if len(results) != len(items):
                raise RuntimeError(
                    f"{self.name}: batch function returned {len(results)} results for {len(items)} items"
                )
            return results
        except Exception as exc:
            if len(items) == 1:
                return [exc]
            logger.warning("%s: batch of %d failed (%s: %s); running its items one by one",
                           self.name, len(items), type(exc).__name__, exc)
            return [self._call([item])[0] for item in items]
