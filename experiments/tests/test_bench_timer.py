"""The benchmarks' timers: alternation and the minimum, on a fake clock (no wall time)."""

from __future__ import annotations

import pytest

from experiments.bench import best_time, best_times_interleaved


class FakeClock:
    """A clock that each timed function advances by its own scripted durations."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_interleaved_alternates_and_takes_each_minimum() -> None:
    clock = FakeClock()
    calls: list[str] = []
    # Per call (warm-up first): a's durations and b's.
    durations = {"a": iter([9.0, 5.0, 3.0, 4.0]), "b": iter([9.0, 1.0, 2.0, 0.5])}

    def make(name: str):
        def fn() -> None:
            calls.append(name)
            clock.now += next(durations[name])
        return fn

    best = best_times_interleaved([make("a"), make("b")], 3, clock=clock)
    assert calls == ["a", "b", "a", "b", "a", "b", "a", "b"]
    # The warm-up calls (9.0 each) are not timed.
    assert best == [3.0, 0.5]


def test_best_time_skips_the_warm_up() -> None:
    clock = FakeClock()
    steps = iter([100.0, 2.0, 1.5, 7.0])

    def fn() -> None:
        clock.now += next(steps)

    assert best_time(fn, 3, clock=clock) == 1.5


def test_blocks_take_turns_and_cover_every_repeat() -> None:
    clock = FakeClock()
    calls: list[str] = []
    durations = {"a": iter([9.0, 4.0, 3.0, 5.0, 6.0, 2.0]),
                 "b": iter([9.0, 7.0, 8.0, 1.0, 6.0, 6.0])}

    def make(name: str):
        def fn() -> None:
            calls.append(name)
            clock.now += next(durations[name])
        return fn

    # 5 repeats in blocks of 2: a a b b, a a b b, a b (after one warm-up call each).
    best = best_times_interleaved([make("a"), make("b")], 5, clock=clock, block=2)
    assert calls == ["a", "b", "a", "a", "b", "b", "a", "a", "b", "b", "a", "b"]
    assert best == [2.0, 1.0]


def test_block_must_be_positive() -> None:
    with pytest.raises(ValueError, match="block"):
        best_times_interleaved([lambda: None], 3, block=0)
