"""The one batcher of every in-process model (`workers.models.batching.Batcher`), on its own:
a batch function here is plain Python, so what is under test is the gathering, the routing of
results and failures, and the bounded memory. The hosts' own batching, with real checkpoints,
is in test_hosts.py, test_chat_transformers.py, test_speech.py and test_guard.py."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

from workers.models.batching import RECENT_BATCHES, Batcher


def submit_together(batcher: Batcher, items: list, *, timeout: float = 30) -> list:
    """Submit every item from its own thread at the same moment; each thread's own outcome
    (a result or the exception it got)."""
    barrier = threading.Barrier(len(items))
    outcomes: list = [None] * len(items)

    def call(i: int) -> None:
        barrier.wait()
        try:
            outcomes[i] = batcher.submit(items[i]).result(timeout)
        except Exception as exc:  # the outcome under test
            outcomes[i] = exc

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(items))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    return outcomes


def test_concurrent_callers_share_batches_and_each_gets_its_own_result():
    seen: list[list[int]] = []

    def square(items: Sequence[int]) -> list[int]:
        seen.append(list(items))
        return [i * i for i in items]

    batcher: Batcher[int, int] = Batcher(square, max_batch=8, max_wait=0.3)
    outcomes = submit_together(batcher, list(range(12)))
    assert outcomes == [i * i for i in range(12)]
    assert max(len(batch) for batch in seen) > 1  # they went together
    assert all(len(batch) <= 8 for batch in seen)  # never over max_batch
    assert sorted(i for batch in seen for i in batch) == list(range(12))
    assert list(batcher.batch_sizes) == [len(batch) for batch in seen]
    assert batcher.batches == len(seen)


def test_prepare_runs_in_the_callers_thread_and_its_error_reaches_the_caller():
    threads: dict[str, str] = {}

    def prepare(item: str) -> str:
        if item == "bad":
            raise ValueError("unreadable")
        threads[item] = threading.current_thread().name
        return item.upper()

    batcher: Batcher[str, str] = Batcher(lambda items: [f"<{i}>" for i in items],
                                         prepare=prepare, max_wait=0)
    assert batcher.submit("a").result(10) == "<A>"
    assert threads["a"] == threading.current_thread().name  # not the batcher's thread
    with pytest.raises(ValueError, match="unreadable"):
        batcher.submit("bad")
    assert batcher.batches == 1  # the bad item never reached a batch


def test_a_failing_batch_fails_every_caller_in_it_and_the_next_batch_works():
    state = {"fail": True}
    gate = threading.Event()

    def flaky(items: Sequence[int]) -> list[int]:
        gate.wait(10)
        if state["fail"]:
            state["fail"] = False
            raise RuntimeError("CUDA out of memory")
        return list(items)

    batcher: Batcher[int, int] = Batcher(flaky, max_batch=8, max_wait=0.3)
    threading.Timer(0.2, gate.set).start()
    outcomes = submit_together(batcher, [1, 2, 3])
    failed = [o for o in outcomes if isinstance(o, RuntimeError)]
    assert failed and all("out of memory" in str(o) for o in failed)
    assert batcher.submit(7).result(10) == 7  # the batcher thread lives on


def test_a_batch_function_that_loses_results_fails_its_callers_instead_of_hanging():
    batcher: Batcher[int, int] = Batcher(lambda items: [0], max_batch=4, max_wait=0.3)
    outcomes = submit_together(batcher, [1, 2, 3], timeout=10)
    assert all(isinstance(o, RuntimeError) and "results for a batch" in str(o)
               for o in outcomes if not isinstance(o, int))
    assert any(not isinstance(o, int) for o in outcomes)


def test_batch_sizes_are_bounded_and_stats_are_cheap():
    batcher: Batcher[int, int] = Batcher(lambda items: list(items), max_batch=1, max_wait=0)
    for i in range(RECENT_BATCHES + 10):
        assert batcher.submit(i).result(10) == i
    assert batcher.batches == RECENT_BATCHES + 10
    assert len(batcher.batch_sizes) == RECENT_BATCHES  # a long-lived worker grows no list
    stats = batcher.stats()
    assert stats == {"batches": RECENT_BATCHES + 10, "waiting": 0, "max_batch": 1,
                     "recent_batch_mean": 1.0, "recent_batch_max": 1}


def test_max_batch_must_be_positive():
    with pytest.raises(ValueError):
        Batcher(lambda items: list(items), max_batch=0)
