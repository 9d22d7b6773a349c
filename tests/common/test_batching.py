"""MicroBatcher: concurrent calls share batches, and each caller gets its own result or error."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

import pytest

from common.batching import BatcherClosed, MicroBatcher

pytestmark = pytest.mark.anyio

LONG_WAIT_S = 30.0  # a batch closes when full long before this; it only bounds a broken test


class Recorder:
    """A batch function that records every batch it is given; `fail(item)` picks an item's error."""

    def __init__(self, fail: Callable[[str], Exception | None] = lambda item: None) -> None:
        self.batches: list[list[str]] = []
        self.fail = fail

    def __call__(self, items: list[str]) -> Sequence[str | Exception]:
        self.batches.append(list(items))
        return [self.fail(item) or item.upper() for item in items]

    @property
    def sizes(self) -> list[int]:
        return [len(batch) for batch in self.batches]


@asynccontextmanager
async def running(batcher: MicroBatcher) -> AsyncIterator[MicroBatcher]:
    batcher.start()
    try:
        yield batcher
    finally:
        await batcher.aclose()


async def test_each_caller_gets_its_own_result_from_one_shared_batch() -> None:
    fn = Recorder()
    items = [f"question {i}" for i in range(10)]
    async with running(MicroBatcher(fn, max_size=10, max_wait_s=LONG_WAIT_S)) as batcher:
        results = await asyncio.gather(*(batcher.submit(item) for item in items))
    assert results == [item.upper() for item in items]
    assert fn.sizes == [10]  # the batch closed when full, not when the wait ran out
    assert batcher.stats.batches == 1 and batcher.stats.items == 10 and batcher.stats.largest == 10


async def test_batches_never_exceed_max_size() -> None:
    fn = Recorder()
    items = [f"q{i}" for i in range(12)]
    async with running(MicroBatcher(fn, max_size=4, max_wait_s=LONG_WAIT_S)) as batcher:
        results = await asyncio.gather(*(batcher.submit(item) for item in items))
    assert results == [item.upper() for item in items]
    assert fn.sizes == [4, 4, 4]
    assert [item for batch in fn.batches for item in batch] == items  # first come, first served


async def test_calls_that_arrive_while_a_batch_runs_form_the_next_batch() -> None:
    """No waiting needed under load: the first batch is held in the thread while five more calls queue."""
    busy, release = threading.Event(), threading.Event()
    batches: list[list[str]] = []

    def fn(items: list[str]) -> list[str]:
        batches.append(list(items))
        busy.set()
        assert release.wait(LONG_WAIT_S)
        return [item.upper() for item in items]

    async with running(MicroBatcher(fn, max_size=32, max_wait_s=0.0)) as batcher:
        first = asyncio.create_task(batcher.submit("first"))
        assert await asyncio.to_thread(busy.wait, LONG_WAIT_S)
        rest = [asyncio.create_task(batcher.submit(f"q{i}")) for i in range(5)]
        await asyncio.sleep(0)  # let the five reach the queue
        release.set()
        assert await first == "FIRST"
        assert await asyncio.gather(*rest) == [f"Q{i}" for i in range(5)]
    assert [len(batch) for batch in batches] == [1, 5]


async def test_weight_counts_towards_max_size() -> None:
    """A request with several questions takes several places; one that does not fit starts the next
    batch; one heavier than max_size runs alone."""
    batches: list[list[list[str]]] = []

    def fn(requests: list[list[str]]) -> list[int]:
        batches.append(requests)
        return [len(questions) for questions in requests]

    requests = [["a", "b", "c"], ["d", "e"], ["f", "g"], ["h"] * 4, ["i"] * 9]
    async with running(MicroBatcher(fn, max_size=6, max_wait_s=LONG_WAIT_S, weight=len)) as batcher:
        results = await asyncio.gather(*(batcher.submit(r) for r in requests))
    assert results == [3, 2, 2, 4, 9]
    assert [[len(r) for r in batch] for batch in batches] == [[3, 2], [2, 4], [9]]


async def test_an_error_result_fails_only_its_own_caller() -> None:
    fn = Recorder(fail=lambda item: ValueError(f"bad {item}") if item == "bad" else None)
    async with running(MicroBatcher(fn, max_size=3, max_wait_s=LONG_WAIT_S)) as batcher:
        results = await asyncio.gather(*(batcher.submit(i) for i in ["a", "bad", "c"]), return_exceptions=True)
    assert results[0] == "A" and results[2] == "C"
    assert isinstance(results[1], ValueError) and str(results[1]) == "bad bad"
    assert fn.sizes == [3]


async def test_a_batch_that_raises_is_retried_item_by_item() -> None:
    """One poisonous item makes the batch call raise; its neighbours still get their results."""

    def fn(items: list[str]) -> list[str]:
        fn.sizes.append(len(items))
        if "poison" in items:
            raise RuntimeError("poisoned batch")
        return [item.upper() for item in items]

    fn.sizes = []
    async with running(MicroBatcher(fn, max_size=3, max_wait_s=LONG_WAIT_S)) as batcher:
        results = await asyncio.gather(*(batcher.submit(i) for i in ["a", "poison", "c"]), return_exceptions=True)
    assert results[0] == "A" and results[2] == "C"
    assert isinstance(results[1], RuntimeError) and str(results[1]) == "poisoned batch"
    assert fn.sizes == [3, 1, 1, 1]


async def test_an_exception_for_every_item_reaches_every_caller() -> None:
    def fn(items: list[str]) -> list[str]:
        raise OSError("model is gone")

    async with running(MicroBatcher(fn, max_size=4, max_wait_s=LONG_WAIT_S)) as batcher:
        results = await asyncio.gather(*(batcher.submit(f"q{i}") for i in range(4)), return_exceptions=True)
    assert all(isinstance(r, OSError) and str(r) == "model is gone" for r in results), results


async def test_a_wrong_number_of_results_is_an_error_for_every_caller() -> None:
    async with running(MicroBatcher(lambda items: [], max_size=2, max_wait_s=LONG_WAIT_S)) as batcher:
        results = await asyncio.gather(*(batcher.submit(i) for i in ["a", "b"]), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) and "returned 0 results for 1 items" in str(r) for r in results), results


async def test_a_cancelled_caller_does_not_disturb_the_others() -> None:
    fn = Recorder()
    async with running(MicroBatcher(fn, max_size=4, max_wait_s=LONG_WAIT_S)) as batcher:
        gone = asyncio.create_task(batcher.submit("gone"))
        await asyncio.sleep(0)  # queued
        gone.cancel()
        results = await asyncio.gather(*(batcher.submit(i) for i in ["a", "b", "c"]))
    assert results == ["A", "B", "C"]
    assert "gone" not in [item for batch in fn.batches for item in batch]


async def test_submit_before_start_is_refused() -> None:
    with pytest.raises(BatcherClosed, match="not running"):
        await MicroBatcher(Recorder(), max_size=2, max_wait_s=0.0).submit("a")


async def test_closing_fails_the_calls_still_waiting() -> None:
    batcher = MicroBatcher(Recorder(), max_size=2, max_wait_s=LONG_WAIT_S)
    batcher.start()
    waiting = asyncio.create_task(batcher.submit("a"))  # waits for a second item that never comes
    await asyncio.sleep(0)
    await batcher.aclose()
    with pytest.raises(BatcherClosed, match="shut down"):
        await waiting


@pytest.mark.parametrize(("max_size", "max_wait_s", "name"), [(0, 0.0, "max_size"), (1, -1.0, "max_wait_s")])
def test_bad_arguments_are_refused(max_size: int, max_wait_s: float, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        MicroBatcher(Recorder(), max_size=max_size, max_wait_s=max_wait_s)
