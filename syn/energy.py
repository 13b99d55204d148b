"""Energy of a simulated window: OpenSTA's energy per pin transition x counted transitions.

:func:`activity` counts the transitions of every net of a gate-level netlist in the VCD of its
simulation; :func:`window_energy` multiplies them with OpenSTA's energy per transition of every
pin (:func:`syn._stdcell.sta_pin_energies`, joules) and adds leakage power x time. Both refuse
inputs that belong to another netlist (a VCD whose nets, or a power trace whose instances and
cell types, are not the netlist's), so an activity file or a pin-energy table of the wrong
design cannot turn into a plausible number.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from . import _gatesim as gs
from . import _stdcell as sc
from ._stdcell import CostError


@dataclass
class Energy:
    """Energy of one simulated window (joules) and its parts.

    Attributes:
        total: dynamic + leakage. dynamic: sum over pins of transitions x OpenSTA's energy per
            transition. logic_internal / logic_switching: the design's own cells. input_nets:
            switching of the nets the input drivers charge (the design's input capacitance).
            clock: part of ``dynamic`` on the clock net (clock pins' internal energy and the
            net's switching). leakage: leakage power x time.
        registers: internal energy of the sequential cells (flip-flops and latches, every
            pin, their clock pins included). clock_and_registers: ``registers`` + the clock
            net's switching: the part of ``dynamic`` that storing state costs.
            datapath: ``dynamic - clock_and_registers``: the logic between the registers,
            the switching of the registers' outputs and the input nets.
        cycles: simulated periods in the window; toggles: transitions of all counted nets.
    """

    total: float
    dynamic: float
    logic_internal: float
    logic_switching: float
    input_nets: float
    clock: float
    leakage: float
    cycles: int
    toggles: int
    registers: float = 0.0
    clock_and_registers: float = 0.0
    datapath: float = 0.0


def window_energy(pwr: gs.Netlist, pins: sc.PinEnergies, net_toggles: dict[str, int],
                  cycles: int, period_ns: float, clock: str | None, lib: sc.Library) -> Energy:
    """Combine OpenSTA's pin energies with simulated transitions (see :class:`Energy`).

    The clock is ideal (no driver, no tree: OpenSTA takes the stated clock transition at every
    clock pin); the clock net's own switching, which OpenSTA charges to no cell, is added as
    transitions x 0.5 x (sum of the clock pins' liberty capacitances) x V^2.
    """
    inst_of = {i.name: i for i in pwr.instances}
    _check_pins_belong(pwr, pins)
    li = ls = inp = clk = reg = clk_net = 0.0
    seq = {c: is_sequential(lib, c) for c in {i.cell for i in pwr.instances}}
    for (iname, pin), e_int in pins.internal.items():
        inst = inst_of.get(iname)
        if inst is None:
            raise CostError(f"power trace names unknown instance {iname}")
        if iname.startswith(gs.DRIVER_PREFIX):
            continue  # the input drivers stand for the previous stage: only their nets count
        net = inst.pins[pin]
        e = e_int * net_toggles.get(net, 0)
        li += e
        if net == clock:
            clk += e
        if seq[inst.cell]:
            reg += e
    for (iname, pin), e_sw in pins.switching.items():
        inst = inst_of[iname]
        net = inst.pins[pin]
        e = e_sw * net_toggles.get(net, 0)
        if iname.startswith(gs.DRIVER_PREFIX):
            inp += e
        else:
            ls += e
        if net == clock:
            clk += e
            clk_net += e
    if clock:
        cap_pf = sum(lib.cells[i.cell].pin_cap.get(pin, 0.0) for i in pwr.instances
                     for pin, net in i.pins.items() if net == clock)
        e_net = net_toggles.get(clock, 0) * 0.5 * cap_pf * 1e-12 * lib.voltage ** 2
        ls += e_net
        clk += e_net
        clk_net += e_net
    leak = pins.leakage_w * cycles * period_ns * 1e-9
    dyn = li + ls + inp
    cr = reg + clk_net
    return Energy(dyn + leak, dyn, li, ls, inp, clk, leak, cycles, int(sum(net_toggles.values())),
                  reg, cr, dyn - cr)


def is_sequential(lib: sc.Library, cell: str) -> bool:
    """Whether liberty cell ``cell`` is a flip-flop or a latch (has an ``ff`` or ``latch``
    group); CostError if the library has no such cell."""
    try:
        g = lib.cell_group(cell)
    except KeyError:
        raise CostError(f"cell {cell} not in library {lib.path.name}") from None
    return bool(g.find("ff") or g.find("latch"))


def _check_pins_belong(pwr: gs.Netlist, pins: sc.PinEnergies) -> None:
    """CostError unless the power trace covers exactly ``pwr``'s instances, each with the same
    cell type."""
    cells = {i.name: i.cell for i in pwr.instances}
    for iname, cell in pins.cells.items():
        if cells.get(iname) != cell:
            raise CostError(f"pin energies of another netlist: instance {iname} is a {cell} in "
                            f"the power trace, {cells.get(iname, 'absent')} in {pwr.name}")
    missing = sorted(set(cells) - set(pins.cells))
    if missing:
        raise CostError(f"pin energies of another netlist: {len(missing)} instance(s) of "
                        f"{pwr.name} not in the power trace, e.g. {missing[0]}")


def activity(pwr: gs.Netlist, vcd: Path) -> dict[str, int]:
    """Transitions of every net a cell pin of ``pwr`` touches, counted in ``vcd`` (the dump of
    ``pwr``'s own simulation, :func:`syn._gatesim.simulate`); CostError if the VCD's nets are
    not the netlist's."""
    return activity_from_toggles(pwr, gs.count_toggles(vcd), f"activity file {vcd}")


def activity_from_toggles(pwr: gs.Netlist, toggles: Mapping[str, int], source: str
                          ) -> dict[str, int]:
    """:func:`activity` from transitions per net bit already counted (``source`` names where
    from, for the error); CostError if their nets are not exactly ``pwr``'s."""
    want = set(gs.net_bits(pwr))
    if set(toggles) != want:
        extra = sorted(set(toggles) - want)
        lacking = sorted(want - set(toggles))
        raise CostError(f"{source} is not of netlist {pwr.name}: "
                        f"{len(extra)} net(s) not in the netlist (e.g. {extra[:1]}), "
                        f"{len(lacking)} of its nets missing (e.g. {lacking[:1]})")
    return gs.net_toggles_for(pwr, toggles)
