"""sim.lib.cli.run_main: the one error epilogue of the command lines."""

from __future__ import annotations

import pytest

from sim.lib.cli import run_main


class _ExpectedError(RuntimeError):
    pass


def _raise(exc: BaseException):
    def fn() -> int:
        raise exc
    return fn


def test_returns_the_body_status() -> None:
    assert run_main("tool", lambda: 0, (_ExpectedError,)) == 0
    assert run_main("tool", lambda: 1, (_ExpectedError,)) == 1


def test_expected_error_is_one_line_and_status_2(capsys: pytest.CaptureFixture[str]) -> None:
    expected = (_ExpectedError, ValueError)
    assert run_main("tool", _raise(_ExpectedError("bad input 'x'")), expected) == 2
    assert capsys.readouterr().err == "tool: error: bad input 'x'\n"
    assert run_main("tool", _raise(ValueError("no")), ValueError) == 2  # one type alone
    assert capsys.readouterr().err == "tool: error: no\n"


def test_mapping_gives_each_error_type_its_status(capsys: pytest.CaptureFixture[str]) -> None:
    statuses = {_ExpectedError: 1, RuntimeError: 3}
    assert run_main("t", _raise(_ExpectedError("a")), statuses) == 1
    assert run_main("t", _raise(RuntimeError("b")), statuses) == 3
    assert capsys.readouterr().err == "t: error: a\nt: error: b\n"


def test_unexpected_error_propagates() -> None:
    with pytest.raises(KeyError):
        run_main("tool", _raise(KeyError("bug")), (_ExpectedError, ValueError))


def test_interrupt(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_main("tool", _raise(KeyboardInterrupt()), (_ExpectedError,),
                    interrupted="rerun to resume") == 130
    assert capsys.readouterr().err == "tool: interrupted; rerun to resume\n"
    with pytest.raises(KeyboardInterrupt):
        run_main("tool", _raise(KeyboardInterrupt()), (_ExpectedError,))
