"""`watch_parent`: a child whose parent is gone stops itself, and ends if that stop hangs (the
backstop behind the parent-death signal; the processes themselves: tests/bot/test_clean_stops.py)."""

from __future__ import annotations

import threading

from bot.kernel.processes import watch_parent


class Clock:
    """Waits that pass at once and are written down."""

    def __init__(self) -> None:
        self.waited: list[float] = []

    def wait(self, seconds: float) -> None:
        self.waited.append(seconds)


def run_watch(parents: list[int], bound: float = 27.0) -> tuple[list[str], Clock]:
    """The watch of parent 100 while getppid() answers `parents` in turn (the last one forever)."""
    said: list[str] = []
    clock = Clock()
    answers = iter(parents)
    last = [parents[-1]]

    def getppid() -> int:
        last[0] = next(answers, last[0])
        return last[0]

    done = threading.Event()

    def end(code: int) -> None:
        said.append(f"end {code}")
        done.set()

    thread = watch_parent(100, bound, interval=0.5, getppid=getppid,
                          stop=lambda: said.append("stop"), end=end, sleep=clock.wait)
    assert done.wait(5), said
    thread.join(5)
    return said, clock


def test_a_gone_parent_stops_the_process_then_ends_it_after_the_bound():
    said, clock = run_watch([100, 100, 100, 1])
    assert said == ["stop", "end 1"]
    assert clock.waited == [0.5, 0.5, 0.5, 27.0]  # three looks at a live parent, then the bound


def test_a_parent_already_gone_at_start_is_acted_on_at_once():
    said, clock = run_watch([4242], bound=3.0)
    assert said == ["stop", "end 1"]
    assert clock.waited == [3.0]


def test_a_live_parent_is_left_alone():
    """Twenty looks at a live parent do nothing; once it goes, the stop comes (and the thread
    ends, rather than polling for the rest of the test session)."""
    said: list[str] = []
    looks = [0]
    ended = threading.Event()

    def getppid() -> int:
        looks[0] += 1
        return 100 if looks[0] <= 20 else 1

    def stop() -> None:
        said.append(f"stop after {looks[0]} looks")

    watch_parent(100, 0.0, interval=0.001, getppid=getppid, stop=stop,
                 end=lambda code: ended.set())
    assert ended.wait(5)
    assert said == ["stop after 21 looks"]
