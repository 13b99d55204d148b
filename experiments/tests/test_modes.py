"""Mode strings: canonical names, options parsed into LMulConfig, clear errors."""

from __future__ import annotations

import pytest

from experiments.modes import parse_mode, split_modes


@pytest.mark.parametrize(("text", "name", "kind", "offset", "bits", "rounding"), [
    ("fp32", "fp32", "fp32", None, None, "rne"),
    ("bf16", "bf16", "exact", None, (8, 7), "rne"),
    ("exact:e=4,m=3", "exact:e=4,m=3", "exact", None, (4, 3), "rne"),
    ("lmul", "lmul", "lmul", 8, (8, 7), "rne"),
    ("LMUL:offset=8", "lmul", "lmul", 8, (8, 7), "rne"),  # the paper offset is the default
    ("lmul:offset=7", "lmul:offset=7", "lmul", 7, (8, 7), "rne"),
    ("lmul:fmt=e4m3_ieee", "lmul:e=4,m=3", "lmul", 1, (4, 3), "rne"),  # l(3) = 3: offset 2**0
    ("lmul-mitchell", "lmul-mitchell", "lmul", 0, (8, 7), "rne"),
    ("lmul:offset=0", "lmul:offset=0", "lmul", 0, (8, 7), "rne"),
    ("lmul:rounding=truncate,saturate=1", "lmul:saturate=1,rounding=truncate", "lmul", 8, (8, 7),
     "truncate"),
    ("seed", "seed", "seed", None, None, "truncate"),
    ("seed:head=fp32", "seed:head=fp32", "seed", None, None, "truncate"),
    ("lmul:head=fp32,offset=7", "lmul:offset=7,head=fp32", "lmul", 7, (8, 7), "rne"),
    ("lmul:head=mode", "lmul", "lmul", 8, (8, 7), "rne"),
])
def test_parse_mode(text: str, name: str, kind: str, offset: int | None,
                    bits: tuple[int, int] | None, rounding: str) -> None:
    m = parse_mode(text)
    assert (m.name, m.kind, m.rounding) == (name, kind, rounding)
    if offset is not None:
        assert m.cfg.offset_value == offset
    if bits is not None:
        assert (m.cfg.exp_bits, m.cfg.man_bits) == bits
    assert parse_mode(m.name).name == m.name  # canonical names parse to themselves
    assert m.fp32_head == ("head=fp32" in text)


@pytest.mark.parametrize(("text", "needle"), [
    ("fp16", "unknown mode"),
    ("fp32:offset=1", "takes no options"),
    ("seed:e=4", "takes only head=fp32"),
    ("seed:rounding=truncate", "takes only head=fp32"),
    ("fp32:head=fp32", "takes no options"),
    ("lmul:head=bf16", "head must be"),
    ("lmul:offset=300", "offset"),
    ("lmul:bogus=1", "unknown L-Mul option"),
    ("lmul-mitchell:offset=3", "fixes offset=0"),
    ("bf16:e=4,m=3", "exact:e="),
    ("lmul:rounding=up", "rounding"),
])
def test_bad_modes_are_clear(text: str, needle: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_mode(text)
    assert needle in str(err.value) and repr(text) in str(err.value)


def test_split_modes_keeps_options_together() -> None:
    assert split_modes("fp32,lmul:e=4,m=3,seed,lmul:offset=7") == [
        "fp32", "lmul:e=4,m=3", "seed", "lmul:offset=7"]
