"""The report says how trades ended (per exit reason: count, win rate, returns, bars held, MAE and
MFE) and warns, as the notebook repr and the CLI do, when orders were denied."""

from __future__ import annotations

import polars as pl
import pytest

from backtester.report.exits import exit_summary
from backtester.report.notebook import result_data
from backtester.report.run_page import run_page
from backtester.results import RunResult
from tests.engine_support import Row, run_script

FLAT: Row = (100.0, 100.0, 100.0, 100.0, 1000.0)
ROWS: list[Row] = [
    FLAT,
    FLAT,  # 1: the first bracket's entry fills at 100
    (100.0, 100.5, 94.0, 95.0, 1000.0),  # 2: its stop-loss at 95
    FLAT,
    FLAT,  # 4: the second bracket's entry at 100
    (100.0, 103.0, 99.5, 102.5, 1000.0),  # 5: its take-profit at 102
    FLAT,
    FLAT,  # 7: a plain entry at 100
    FLAT,
    (101.0, 101.0, 101.0, 101.0, 1000.0),  # 9: the strategy's own exit at 101
]
SCRIPT = {
    0: [lambda s: s.buy(1.0, sl=95.0, tp=105.0)],
    3: [lambda s: s.buy(1.0, sl=90.0, tp=102.0)],
    6: [lambda s: s.buy(1.0)],
    8: [lambda s: s.sell(fraction=1.0), lambda s: s.buy(1e6)],  # the second: beyond the cash
}


def run() -> RunResult:
    return run_script(ROWS, SCRIPT, cash=1000)


def test_exit_summary_counts_each_reason_with_its_returns_and_excursions() -> None:
    result = run()
    summary = exit_summary(result.trades)
    assert summary is not None
    rows = {r["exit_reason"]: r for r in summary.to_dicts()}
    assert set(rows) == {"stop_loss", "take_profit", "signal"}
    assert [rows[k]["pnl"] for k in ("stop_loss", "take_profit", "signal")] == [-5.0, 2.0, 1.0]
    assert [rows[k]["win_rate_pct"] for k in ("stop_loss", "take_profit", "signal")] == [
        0.0,
        100.0,
        100.0,
    ]
    assert rows["stop_loss"]["avg_mae_pct"] == pytest.approx(-6.0)  # the low of 94, entry at 100
    assert rows["take_profit"]["avg_mfe_pct"] == pytest.approx(3.0)  # the high of 103
    trades = result.trades.sort("exit_reason")
    held = dict(zip(trades["exit_reason"], trades["bars_held"], strict=True))
    assert {k: rows[k]["avg_bars_held"] for k in rows} == held


def test_the_report_shows_how_trades_ended_and_warns_about_denied_orders() -> None:
    result = run()
    page = run_page(result_data(result, result.bars))
    section = page[page.index('data-block="exits"') :]
    assert section.index("How trades ended") < section.index("stop_loss")
    assert "take_profit" in section and "signal" in section
    # Nine orders: three entries, two brackets' two exits each, the signal exit, the denied buy.
    warning = "1 of 9 orders were denied (insufficient_cash=1)"
    assert result.denial_warning() == warning
    assert f'<p class="note">{warning}: see the reason column of the orders.</p>' in page


def test_trades_from_before_exit_reasons_leave_the_table_out() -> None:
    result = run()
    assert exit_summary(result.trades.drop("exit_reason")) is None
    assert exit_summary(pl.DataFrame(schema=result.trades.schema)).is_empty()  # type: ignore[union-attr]
