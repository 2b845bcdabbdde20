"""The demo against a position limit: the strategy hears every denial, the result, the notebook repr
and the CLI say so, and `on_limit = "cap"` trades at the limit instead.

The demo's 10,000 USDT never buys a whole bitcoin, so the runs here give it ten times the cash:
every entry would then be 1.4 to 3.9 BTC, over a limit of 1.0."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from backtester import Backtest, Instrument
from backtester.domain.messages import OrderDenied
from backtester.strategies import SmaExtended
from backtester.strategy.base import OrderEvent
from tests.cli_support import run_cli

DATA = "golden/data/binance_BTC-USDT_1h.csv"
PARAMS = {"fast": 24, "slow": 72, "trend_bars": 200, "stop_loss_pct": 4.0}
BTC = Instrument("BTC/USDT", tick_size=0.01, lot_size=0.00001, min_notional=5.0)


class Listening(SmaExtended):
    def on_order(self, event: OrderEvent) -> None:
        if isinstance(event, OrderDenied):
            self.denials.append(event)

    def on_start(self) -> None:
        super().on_start()
        self.denials: list[OrderDenied] = []


def demo(**limits: Any) -> Backtest:
    return Backtest(
        DATA,
        Listening,
        cash=100_000,
        fee_rate=0.001,
        repair=True,
        instrument=BTC,
        max_position_quantity=1.0,
        **limits,
    )


def test_every_denied_entry_reaches_on_order_and_the_result_warns() -> None:
    engine = demo().engine(**PARAMS)
    result = engine.run()
    denials = engine.strategy.denials  # type: ignore[attr-defined]
    assert len(denials) == result.stats["orders"] > 0
    assert {d.code for d in denials} == {"max_position"}
    assert denials[0].reason.startswith("position would be ")
    assert result.stats["trades"] == 0
    assert result.stats["orders_denied"] == len(denials)
    assert result.stats["denial_reasons"] == f"max_position={len(denials)}"
    assert result.denials.to_dicts()[0]["count"] == len(denials)
    assert f"warning: {len(denials)} of {len(denials)} orders were denied" in repr(result)
    assert "warning:" in result._repr_html_()


def test_with_on_limit_cap_the_demo_trades_positions_of_the_limit() -> None:
    result = demo(on_limit="cap").run(**PARAMS)
    assert result.stats["orders_denied"] == 0
    assert result.stats["trades"] > 20
    assert set(result.trades["quantity"].to_list()) == {1.0}
    assert "warning" not in repr(result)


@pytest.mark.parametrize("on_limit", ["deny", "cap"])
def test_the_cli_warns_about_denied_orders(tmp_path: Path, on_limit: str) -> None:
    done = run_cli(
        "run",
        "configs/btc_trend_1h.toml",
        "--set",
        "cash=100000",
        "--set",
        "risk.max_position_quantity=1.0",
        "--set",
        f"risk.on_limit={on_limit!r}".replace("'", '"'),
        "--out",
        str(tmp_path),
    )
    assert done.returncode == 0, done.stderr
    if on_limit == "deny":
        assert "warning: " in done.stderr and "orders were denied (max_position=" in done.stderr
    else:
        assert "orders were denied" not in done.stderr
