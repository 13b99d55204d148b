"""lmul.sigmoid32 / lmul.tanh32: correctly rounded float32, checked against mpmath (60 digits).

The checker (:func:`check_against_reference`) evaluates each input in float64 itself and sends to
mpmath every input whose float64 value lies within ``2**-36`` relative of a float32 midpoint
(a far wider margin than the implementation's); everywhere else the correct float32 is the
float64 value rounded once, given float64 ``exp`` / ``tanh`` within ``2**-37`` relative error
(:func:`test_float64_error_is_far_inside_the_assumed_bound` measures it on this machine).
"""

from __future__ import annotations

from collections.abc import Callable

import mpmath
import numpy as np
import pytest

import lmul
from lmul import _activations

DIGITS = 60
LOOSE_LOG2 = -36  # the checker's margin around a midpoint (relative)


def ref_value(name: str, x: float) -> mpmath.mpf:
    with mpmath.workdps(DIGITS):
        v = mpmath.mpf(x)
        return 1 / (1 + mpmath.exp(-v)) if name == "sigmoid" else mpmath.tanh(v)


def nearest_float32(v: mpmath.mpf) -> np.float32:
    """The float32 nearest ``v``; fails on a (near) tie, which a correct reference cannot settle."""
    with mpmath.workdps(DIGITS):
        c = np.float32(float(v))  # within one float32 step of the nearest (double rounding)
        cands = [c, np.nextafter(c, np.float32(-np.inf)), np.nextafter(c, np.float32(np.inf))]
        dist = sorted((abs(v - mpmath.mpf(float(k))), i) for i, k in enumerate(cands))
        assert dist[1][0] - dist[0][0] > mpmath.mpf(10) ** -50 * abs(v), f"near tie at {v}"
        return cands[dist[0][1]]


def reference32(name: str, xs: np.ndarray) -> np.ndarray:
    return np.array([nearest_float32(ref_value(name, float(x))) for x in xs], np.float32)


def float64_value(name: str, x: np.ndarray) -> np.ndarray:
    x64 = x.astype(np.float64)
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x64)) if name == "sigmoid" else np.tanh(x64)


def old_path(name: str, x: np.ndarray) -> np.ndarray:
    """The float64-and-round-once evaluation the package used before."""
    return float64_value(name, x).astype(np.float32)


def near_midpoint(y64: np.ndarray) -> np.ndarray:
    """Mask of the float64 values within ``2**LOOSE_LOG2`` relative of a float32 midpoint."""
    r = y64.astype(np.float32)
    toward = np.where(y64 > r, np.float32(np.inf), np.float32(-np.inf)).astype(np.float32)
    mid = (r.astype(np.float64) + np.nextafter(r, toward).astype(np.float64)) / 2  # exact
    return (y64 != r) & (np.abs(y64 - mid) <= np.abs(y64) * 2.0 ** LOOSE_LOG2)


FNS = {"sigmoid": lmul.sigmoid32, "tanh": lmul.tanh32}


def check_against_reference(name: str, fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray
                            ) -> int:
    """Assert ``fn(x)`` (finite float32 ``x``) is correctly rounded; return how many inputs
    mpmath settled."""
    got = fn(x).view(np.uint32)
    y64 = float64_value(name, x)
    want = y64.astype(np.float32)
    hard = np.flatnonzero(near_midpoint(y64))
    want[hard] = reference32(name, x[hard])
    bad = np.flatnonzero(got != want.view(np.uint32))
    assert bad.size == 0, (f"{name}32 wrong on {bad.size} of {x.size}, e.g. x={x[bad[0]]!r}: "
                           f"{got[bad[0]]:#010x} != {want.view(np.uint32)[bad[0]]:#010x}")
    return hard.size


def float32_range(lo: float, hi: float) -> np.ndarray:
    """Every float32 in ``[lo, hi)``, ``0 < lo < hi``."""
    a, b = np.array([lo, hi], np.float32).view(np.uint32)
    return np.arange(a, b, dtype=np.uint32).view(np.float32)


def test_old_path_is_wrong_where_the_new_one_is_right() -> None:
    x = np.array([-1.5676022e-05], np.float32)
    want = reference32("sigmoid", x)
    assert want[0] == np.float32(0.4999961)
    assert old_path("sigmoid", x)[0] == np.float32(0.49999607)  # the machine's float64 rounding
    assert lmul.sigmoid32(x)[0] == want[0]
    # The checker itself catches the old path on the window around that input.
    with pytest.raises(AssertionError, match="sigmoid32 wrong"):
        check_against_reference("sigmoid", lambda v: old_path("sigmoid", v),
                                -float32_range(2.0 ** -16, 2.0 ** -15))


@pytest.mark.parametrize("name, lo, hi, min_settled", [
    # 0.5 + x/4 on a midpoint, x**3/48 below float64's resolution: a family of hard cases
    ("sigmoid", 2.0 ** -16, 2.0 ** -15, 10),
    ("sigmoid", -(2.0 ** -15), -(2.0 ** -16), 10),
    ("sigmoid", -(2.0 ** -13), -(2.0 ** -14), 100),  # the family where float64 still resolves
    ("tanh", 2.0 ** -12, 2.0 ** -11, 100),  # x - x**3/3 near x's own midpoints
    ("tanh", 9.0, 9.02, 10),  # saturation to 1.0 from 1 - 2**-25 (x ~ 9.011) on
    ("sigmoid", 17.0, 17.5, 10),  # the same at x ~ 17.33
    ("sigmoid", -104.5, -103.5, 0),  # the tail through the subnormals to +0 (2**-150 at -103.97)
])
def test_every_float32_in_a_window(name: str, lo: float, hi: float, min_settled: int) -> None:
    sign = -1 if hi < 0 else 1
    xs = sign * float32_range(min(abs(lo), abs(hi)), max(abs(lo), abs(hi)))
    settled = 0
    for part in np.array_split(xs, max(1, xs.size // (1 << 21))):
        settled += check_against_reference(name, FNS[name], part)
    assert settled >= min_settled


def test_old_path_differs_in_the_hard_windows() -> None:
    """Around 0 the float64 rounding gets some inputs wrong (this machine: 42 of 2**24 * 3)."""
    diff = []
    for e in (-18, -17, -16):
        for sign in (1, -1):
            xs = sign * float32_range(2.0 ** e, 2.0 ** (e + 1))
            diff.append(xs[lmul.sigmoid32(xs) != old_path("sigmoid", xs)])
    wrong = np.concatenate(diff)
    assert wrong.size >= 1
    np.testing.assert_array_equal(lmul.sigmoid32(wrong), reference32("sigmoid", wrong))
    assert not np.any(old_path("sigmoid", wrong) == reference32("sigmoid", wrong))


def sweep(n: int, seed: int) -> np.ndarray:
    """``n`` float32: half uniform bit patterns of [-110, 110] (dense near 0 down to the
    subnormals), half uniform values of [-20, 20]."""
    rng = np.random.default_rng(seed)
    top = np.array(110.0, np.float32).view(np.uint32)
    bits = rng.integers(0, top, n // 2, dtype=np.uint32) | (rng.integers(0, 2, n // 2,
                                                                     dtype=np.uint32) << 31)
    return np.concatenate([bits.view(np.float32),
                           rng.uniform(-20, 20, n - n // 2).astype(np.float32)])


@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
def test_dense_sweep(name: str) -> None:
    check_against_reference(name, FNS[name], sweep(1_000_000, 1))


@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
def test_random_sample_equals_mpmath(name: str) -> None:
    x = sweep(20_000, 2)
    np.testing.assert_array_equal(FNS[name](x).view(np.uint32),
                                  reference32(name, x).view(np.uint32))


@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
def test_every_hard_case_the_detector_finds(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every input the implementation settles with mpmath (found in the sweep and the windows)
    gets the reference's float32."""
    seen: list[float] = []
    side = _activations._side

    def spy(fn_iv, x, mid):  # type: ignore[no-untyped-def]
        seen.append(x)
        return side(fn_iv, x, mid)

    monkeypatch.setattr(_activations, "_side", spy)
    xs = np.concatenate([sweep(1_000_000, 3), float32_range(0.5, 0.5625),
                         -float32_range(2.0 ** -16, 2.0 ** -15),
                         float32_range(2.0 ** -12, 2.0 ** -11), -float32_range(9.0, 9.02),
                         float32_range(17.0, 17.5)])
    got = FNS[name](xs)
    assert seen
    keys = np.sort(np.array(seen, np.float32))
    v = np.abs(xs) if name == "tanh" else xs
    mask = keys[np.minimum(np.searchsorted(keys, v), keys.size - 1)] == v
    assert mask.sum() >= 20
    np.testing.assert_array_equal(got[mask].view(np.uint32),
                                  reference32(name, xs[mask]).view(np.uint32))


@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
def test_float64_error_is_far_inside_the_assumed_bound(name: str) -> None:
    """The implementation assumes ``|y64 - f(x)| <= 2**-45 |f(x)|`` (detecting at ``2**-43``);
    the checker above assumes ``2**-37``. Here numpy's float64 is within ``2**-50``."""
    x = sweep(5_000, 4)
    y64 = float64_value(name, x)
    with mpmath.workdps(DIGITS):
        worst = max(abs(mpmath.mpf(float(y)) / ref_value(name, float(v)) - 1)
                    for v, y in zip(x, y64, strict=True) if y != 0)
    assert worst <= mpmath.mpf(2) ** -50


def bits(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, np.float32).view(np.uint32)


def test_special_values() -> None:
    inf = np.float32(np.inf)
    x = np.array([inf, -inf, 0.0, -0.0, 1e-45, -1e-45, 2.0 ** -126, 1e4, -1e4, 3e38, -3e38],
                 np.float32)
    s, t = lmul.sigmoid32(x), lmul.tanh32(x)
    np.testing.assert_array_equal(bits(s), bits([1, 0, 0.5, 0.5, 0.5, 0.5, 0.5, 1, 0, 1, 0]))
    np.testing.assert_array_equal(
        bits(t), bits([1, -1, 0.0, -0.0, 1e-45, -1e-45, 2.0 ** -126, 1, -1, 1, -1]))
    # Saturation: sigmoid(x) rounds to 1.0 from the last midpoint 1 - 2**-25 (x ~ 17.33) on;
    # below x ~ -103.97 it rounds to +0, just above to the smallest subnormal 2**-149.
    assert lmul.sigmoid32(np.float32(17.4)) == 1.0 and lmul.sigmoid32(np.float32(17.3)) < 1.0
    assert bits(lmul.sigmoid32(np.float32(-104.0))) == 0
    assert bits(lmul.sigmoid32(np.float32(-103.9))) == 1


def test_nan_is_passed_through_quieted() -> None:
    nans = np.array([0x7FC00000, 0xFFC00000, 0x7FC12345, 0x7F800001, 0xFF812345],
                    np.uint32).view(np.float32)  # quiet, negative, payload, signaling
    want = np.array([0x7FC00000, 0xFFC00000, 0x7FC12345, 0x7FC00001, 0xFFC12345], np.uint32)
    for fn in (lmul.sigmoid32, lmul.tanh32):
        np.testing.assert_array_equal(fn(nans).view(np.uint32), want)
        np.testing.assert_array_equal(fn(np.concatenate([nans, np.ones(3, np.float32)]))
                                      .view(np.uint32)[:5], want)


def test_shapes_and_input_checks() -> None:
    x = np.arange(-12, 12, dtype=np.float32).reshape(4, 6)[:, ::2]  # not contiguous
    for name, fn in FNS.items():
        got = fn(x)
        assert got.shape == (4, 3) and got.dtype == np.float32
        np.testing.assert_array_equal(got, reference32(name, x.reshape(-1)).reshape(4, 3))
        assert fn(np.float32(0.25)).shape == ()
        assert fn(np.empty((0, 3), np.float32)).shape == (0, 3)
        with pytest.raises(TypeError, match=f"{name}32 needs float32 values, got dtype float64"):
            fn(np.zeros(2))


def test_torch_paths_give_the_same_bits() -> None:
    torch = pytest.importorskip("torch")
    import lmul.torch as lt
    from lmul import _torch_ops

    xs = np.concatenate([-float32_range(2.0 ** -14, 2.0 ** -13)[:200_000], sweep(10_000, 5)])
    for name, fn in FNS.items():
        want = bits(fn(xs))
        tfn = getattr(lt, f"{name}32")
        np.testing.assert_array_equal(bits(tfn(torch.from_numpy(xs)).numpy()), want)
        np.testing.assert_array_equal(bits(tfn(xs)), want)
    assert _torch_ops._sigmoid_np is lmul.sigmoid32 and _torch_ops._tanh_np is lmul.tanh32
