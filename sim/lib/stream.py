"""Valid/ready stream components shared by every streaming testbench (lmul_unit, mac_array).

In the spirit of cocotbext-axi's stream sources and sinks with pause generators:

* :class:`StreamSource` drives ``valid`` and the data lines of a DUT input from a queue of beats.
  It obeys the stream rule it checks the DUT against: valid never waits for ready, and once
  valid is high it and its data stay until the transfer. A pause generator decides, only
  between beats, whether the next beat is offered now or after an idle cycle; idle data lines
  carry random garbage (the DUT must ignore them).
* :class:`StreamSink` drives ``ready`` from a pause generator (back-pressure).
* :class:`StreamMonitor` watches one stream and fails the test when valid falls, or any data
  line changes, while ready is low; on an output stream it also fails when a beat is presented
  with no matching input (``outstanding``), and it hands every transfer to a callback (the
  scoreboard). Put one on every DUT output; one on the DUT input checks the source itself.
* :class:`Scoreboard` matches transfers against expected beats in order.
* :class:`StreamBench` is the base of a streaming testbench (a DUT with ``clk``, ``rst``,
  ``out_valid``, one source and one scoreboard): its :meth:`~StreamBench.reset` pulses reset and
  drops the traffic in flight.

All components sample at the rising clock edge, where the values seen are those of the cycle
that ends there (what the DUT's registers capture), and drive right after it; :func:`start_all`
steps several of them in one task. Cycle numbers are simulation time divided by the clock
period. A beat is a dict ``{signal name: int}``.
"""

from __future__ import annotations

import itertools
import random
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import cocotb
from cocotb.simtime import get_sim_time
from cocotb.triggers import ReadOnly, RisingEdge

Beat = dict[str, int]


def pause_never() -> Iterator[bool]:
    """Never pause: a beat every cycle (source) / ready always high (sink)."""
    return itertools.repeat(False)


def pause_always() -> Iterator[bool]:
    """Always pause: the source offers nothing / the sink never accepts."""
    return itertools.repeat(True)


def pause_random(rng: random.Random, p_pause: float) -> Iterator[bool]:
    """Pause with probability ``p_pause`` each cycle (seeded)."""
    if not 0.0 <= p_pause <= 1.0:
        raise ValueError(f"p_pause must be in [0, 1], got {p_pause}")
    while True:
        yield rng.random() < p_pause


def pause_pattern(pattern: Sequence[int | bool]) -> Iterator[bool]:
    """Repeat a fixed pause pattern, e.g. ``[0, 0, 1]`` (two cycles on, one off)."""
    return itertools.cycle(bool(x) for x in pattern)


class ProtocolError(AssertionError):
    """A stream rule broken by the DUT (or by a testbench component)."""


class _Clocked:
    """Base of the components: the DUT's clock and (optional, active-high) reset by name; the
    clock period gives cycle numbers."""

    def __init__(self, dut: Any, name: str, clock: str = "clk", reset: str | None = "rst",
                 period_ns: float = 10.0) -> None:
        self.dut = dut
        self.name = name
        self.clk = getattr(dut, clock)
        self.rst = getattr(dut, reset) if reset else None
        self.period_ns = period_ns
        self._task = None

    def cycle(self) -> int:
        """The current clock cycle (simulation time / period)."""
        return round(get_sim_time(unit="ns") / self.period_ns)

    def _in_reset(self) -> bool:
        return self.rst is not None and int(self.rst.value) == 1

    def start(self) -> None:
        """Run this component in its own task (see :func:`start_all` for several)."""
        if self._task is None:
            self._task = start_all(self)

    def step(self) -> None:
        """Sample and drive at one rising clock edge."""
        raise NotImplementedError


def start_all(*parts: _Clocked) -> Any:
    """Run ``parts`` (same clock) in one task that steps them in order at every rising edge:
    one wake-up per cycle instead of one per component, and a fixed order within an edge."""

    async def run() -> None:
        edge = RisingEdge(parts[0].clk)
        while True:
            await edge
            for part in parts:
                part.step()

    task = cocotb.start_soon(run())
    for part in parts:
        part._task = task
    return task


class StreamSource(_Clocked):
    """Drives ``valid`` (default ``in_valid``) and the data lines ``signals`` of one DUT input.

    ``on_transfer(beat, tag, cycle)`` is called for every beat the DUT accepts. ``rng``, when
    given, puts random garbage on the data lines while valid is low.
    """

    def __init__(self, dut: Any, signals: Sequence[str], *, valid: str = "in_valid",
                 ready: str = "in_ready", rng: random.Random | None = None,
                 on_transfer: Callable[[Beat, Any, int], None] | None = None,
                 name: str = "source", **kw: Any) -> None:
        super().__init__(dut, name, **kw)
        self.valid = getattr(dut, valid)
        self.ready = getattr(dut, ready)
        self.signals = {s: getattr(dut, s) for s in signals}
        self.widths = {s: _width(h) for s, h in self.signals.items()}
        self.rng = rng
        self.on_transfer = on_transfer
        self.queue: deque[tuple[Beat, Any]] = deque()
        self.pause: Iterator[bool] = pause_never()
        self.active: tuple[Beat, Any] | None = None
        self.transfers = 0
        self._idle()

    def set_pause(self, pause: Iterator[bool]) -> None:
        self.pause = pause

    def send(self, beat: Beat, tag: Any = None) -> None:
        """Queue one beat (``tag`` comes back in ``on_transfer``)."""
        self.queue.append((beat, tag))

    def clear(self) -> None:
        """Drop the queue and the beat on offer (used around a reset); valid goes low now."""
        self.queue.clear()
        self.active = None
        self._idle()

    @property
    def idle(self) -> bool:
        return not self.queue and self.active is None

    def _idle(self) -> None:
        self.valid.value = 0
        if self.rng is not None:
            for s, h in self.signals.items():
                h.value = self.rng.getrandbits(self.widths[s])

    def step(self) -> None:
        if self.active is not None and not self._in_reset() and int(self.ready.value):
            beat, tag = self.active
            self.active = None
            self.transfers += 1
            if self.on_transfer is not None:
                self.on_transfer(beat, tag, self.cycle())
        # A new beat is chosen only when none is on offer: valid and data hold until taken.
        if self.active is None:
            if self.queue and not next(self.pause):
                self.active = self.queue.popleft()
                for s, v in self.active[0].items():
                    self.signals[s].value = v
                self.valid.value = 1
            else:
                self._idle()


class StreamSink(_Clocked):
    """Drives ``ready`` of one DUT output stream from a pause generator."""

    def __init__(self, dut: Any, *, ready: str = "out_ready", name: str = "sink",
                 **kw: Any) -> None:
        super().__init__(dut, name, **kw)
        self.ready = getattr(dut, ready)
        self.pause: Iterator[bool] = pause_never()
        self.ready.value = 0

    def set_pause(self, pause: Iterator[bool]) -> None:
        self.pause = pause

    def step(self) -> None:
        self.ready.value = int(not next(self.pause))


class StreamMonitor(_Clocked):
    """Protocol checker of one stream; reports every transfer to ``on_transfer(beat, cycle)``.

    Fails (raises :class:`ProtocolError` in its task, which fails the cocotb test) when, while
    ready is low, valid falls or a line of ``signals`` changes; and, if ``outstanding`` is given,
    when valid is high while ``outstanding(cycle)`` (results owed for inputs accepted before
    this cycle, e.g. :meth:`Scoreboard.pending`) is 0: a beat with no matching input. Cycles in
    reset are skipped and forget a pending stall. ``errors`` keeps every message.
    """

    def __init__(self, dut: Any, signals: Sequence[str], *, valid: str = "out_valid",
                 ready: str = "out_ready",
                 on_transfer: Callable[[Beat, int], None] | None = None,
                 outstanding: Callable[[int], int] | None = None, name: str = "monitor",
                 **kw: Any) -> None:
        super().__init__(dut, name, **kw)
        self.valid = getattr(dut, valid)
        self.ready = getattr(dut, ready)
        self.signals = {s: getattr(dut, s) for s in signals}
        self.on_transfer = on_transfer
        self.outstanding = outstanding
        self.transfers = 0
        self.stall_cycles = 0
        self.errors: list[str] = []
        self._held: Beat | None = None

    def _fail(self, what: str) -> None:
        msg = f"{self.name}: cycle {self.cycle()}: {what}"
        self.errors.append(msg)
        raise ProtocolError(msg)

    def step(self) -> None:
        if self._in_reset():
            self._held = None
            return
        valid = int(self.valid.value) == 1
        if not valid and self._held is None:
            return
        ready = int(self.ready.value) == 1
        beat = {s: int(h.value) for s, h in self.signals.items()} if valid else None
        if self._held is not None:
            if not valid:
                self._fail(f"valid fell while ready was low (held beat {_fmt(self._held)})")
            changed = [s for s in self.signals if beat[s] != self._held[s]]
            if changed:
                self._fail(f"{', '.join(changed)} changed while ready was low: "
                           f"{_fmt(self._held)} -> {_fmt(beat)}")
        if self.outstanding is not None and self.outstanding(self.cycle()) <= 0:
            self._fail(f"valid with no matching input: {_fmt(beat)}")
        self._held = beat if not ready else None
        if not ready:
            self.stall_cycles += 1
        else:
            self.transfers += 1
            if self.on_transfer is not None:
                self.on_transfer(beat, self.cycle())


def _width(handle: Any) -> int:
    try:
        return len(handle)
    except TypeError:  # a scalar (1-bit) signal
        return 1


def _fmt(beat: Beat | None) -> str:
    if beat is None:
        return "-"
    return " ".join(f"{k}=0x{v:x}" for k, v in beat.items())


class Scoreboard:
    """In-order comparison of transfers against expected beats.

    ``compare(expected, got, tag)`` returns None when they match, else a message (default:
    equality of every field). A mismatch, or a transfer with nothing expected, raises
    AssertionError. Expected beats carry the cycle of the input transfer that caused them: a
    result can only match an input accepted at an earlier clock edge (components run in no
    fixed order within one edge).
    """

    def __init__(self, name: str,
                 compare: Callable[[Beat, Beat, Any], str | None] | None = None) -> None:
        self.name = name
        self.compare = compare or _compare_equal
        self.expected: deque[tuple[Beat, Any, int]] = deque()
        self.matched = 0

    def expect(self, beat: Beat, tag: Any = None, cycle: int = -1) -> None:
        """Expect ``beat``, caused by an input accepted at ``cycle``."""
        self.expected.append((beat, tag, cycle))

    def pending(self, cycle: int | None = None) -> int:
        """Beats still expected (of inputs accepted before ``cycle``, if given)."""
        n = len(self.expected)
        if cycle is not None:
            while n and self.expected[n - 1][2] >= cycle:
                n -= 1
        return n

    def clear(self) -> None:
        self.expected.clear()

    def check(self, got: Beat, cycle: int) -> Any:
        """Match ``got`` against the oldest expected beat; return that beat's tag."""
        if not self.pending(cycle):
            raise AssertionError(f"{self.name}: cycle {cycle}: unexpected beat {_fmt(got)}")
        want, tag, _ = self.expected.popleft()
        msg = self.compare(want, got, tag)
        if msg is not None:
            raise AssertionError(f"{self.name}: cycle {cycle}: {msg}")
        self.matched += 1
        return tag


def _compare_equal(want: Beat, got: Beat, tag: Any) -> str | None:
    bad = [k for k in want if got.get(k) != want[k]]
    if not bad:
        return None
    return (f"beat {tag!r}: " + ", ".join(f"{k} got 0x{got[k]:x} expected 0x{want[k]:x}"
                                          for k in bad))


class StreamBench:
    """Base of a streaming testbench: subclasses set ``dut``, ``source`` (the
    :class:`StreamSource` on the DUT input) and ``board`` (the :class:`Scoreboard` of its
    output) in their constructor."""

    dut: Any
    source: StreamSource
    board: Scoreboard

    def ready_after_reset(self) -> bool:
        """Whether ``in_ready`` must be high right after reset (False: not checked)."""
        return False

    async def reset(self, cycles: int = 2) -> None:
        """Pulse ``rst`` for ``cycles`` clock edges; the beat on offer and every outstanding
        result are dropped, and the DUT must come out of it with ``out_valid`` low (and
        ``in_ready`` high where :meth:`ready_after_reset` says so)."""
        self.dut.rst.value = 1
        await RisingEdge(self.dut.clk)
        # Forget the traffic only once the monitors see rst (they may still be checking the
        # edge on which rst was raised).
        self.source.clear()
        self.board.clear()
        for _ in range(cycles - 1):
            await RisingEdge(self.dut.clk)
        self.dut.rst.value = 0
        await ReadOnly()
        assert int(self.dut.out_valid.value) == 0, "out_valid set right after reset"
        if self.ready_after_reset():
            assert int(self.dut.in_ready.value) == 1, "in_ready low right after reset"
        await RisingEdge(self.dut.clk)
