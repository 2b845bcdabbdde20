"""Perpetual futures end to end: shorts mirror longs, funding is paid exactly as the exchange's rule
says on real XRP/USDT:USDT data, liquidations happen at the liquidation price with the fee, in
isolated and cross mode, and runs that cannot be built are refused with a reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from backtester import Backtest, Instrument, Strategy
from backtester.accounting.arithmetic import isolated_liquidation_price
from backtester.domain.messages import Bar, PositionLiquidated
from backtester.engine import SetupError
from backtester.strategies import SmaCross
from tests.engine_support import Row, bars_frame, scripted

DATA = Path(__file__).resolve().parents[1] / "data"
FUTURES = DATA / "freqtrade" / "freqtrade_XRP-USDT-USDT_1h_futures.csv"
MARKS = DATA / "freqtrade" / "freqtrade_XRP-USDT-USDT_1h_mark.csv"
FUNDING = DATA / "freqtrade_XRP-USDT-USDT_8h_funding_rate.csv"
XRP = "XRP/USDT:USDT"
HOUR_MS = 3_600_000
# The window the shipped futures, mark and funding series all cover.
START_MS, END_MS = 1_637_164_800_000, 1_637_316_000_000  # 2021-11-17 16:00 .. 2021-11-19 10:00


def xrp_bars() -> pl.DataFrame:
    frame = pl.read_csv(FUTURES)
    return frame.filter(pl.col("timestamp_ms").is_between(START_MS, END_MS, closed="left"))


def flat(price: float) -> Row:
    return (price, price, price, price, 10.0)


# --- shorts -----------------------------------------------------------------------------------------


def test_a_short_earns_what_the_long_earns_on_the_reflected_series() -> None:
    rng = np.random.Generator(np.random.PCG64(7))
    closes = 100.0 + np.cumsum(rng.normal(0.0, 1.0, 80))
    rows: list[Row] = []
    for i, close in enumerate(closes):
        open_ = closes[i - 1] if i else close
        high, low = max(open_, close) + 0.7, min(open_, close) - 0.4
        rows.append((open_, high, low, close, 5.0))
    mirrored: list[Row] = [
        (400.0 - o, 400.0 - lo, 400.0 - hi, 400.0 - c, v) for o, hi, lo, c, v in rows
    ]
    script = {3: [lambda s: s.buy(4.0)], 30: [lambda s: s.buy(2.0)], 55: [lambda s: s.close()]}
    short_script = {
        3: [lambda s: s.sell(4.0)],
        30: [lambda s: s.sell(2.0)],
        55: [lambda s: s.close()],
    }
    perp = Instrument("ETH/USDT:USDT", leverage=1)
    long = Backtest(bars_frame(mirrored), scripted(script), cash=10_000, instrument=perp).run()
    short = Backtest(bars_frame(rows), scripted(short_script), cash=10_000, instrument=perp).run()
    gain_long = long.equity["equity"].to_numpy() - 10_000.0
    gain_short = short.equity["equity"].to_numpy() - 10_000.0
    np.testing.assert_allclose(gain_short, gain_long, rtol=1e-9, atol=1e-9 * 10_000)
    assert short.trades["side"].to_list() == ["short"]
    assert short.trades["pnl"][0] == pytest.approx(long.trades["pnl"][0], rel=1e-9)


def test_sell_while_flat_opens_a_short_and_close_covers_it() -> None:
    perp = Instrument("BTC/USDT:USDT", leverage=2)
    script = {0: [lambda s: s.sell(fraction=0.5)], 2: [lambda s: s.close()]}
    result = Backtest(
        bars_frame([flat(100.0), flat(100.0), flat(90.0), flat(80.0)]),
        scripted(script),
        cash=1_000,
        instrument=perp,
    ).run()
    sell, buy = result.fills.to_dicts()
    # Half the buying power as margin at leverage 2: a notional of 1,000 at 100.
    assert (sell["side"], sell["quantity"], sell["price"]) == ("sell", 10.0, 100.0)
    assert (buy["side"], buy["quantity"], buy["price"]) == ("buy", 10.0, 80.0)
    assert result.trades["pnl"][0] == 200.0
    assert result.stats["short_trades"] == 1


def test_a_short_on_a_spot_cash_account_is_refused_with_how_to_get_one() -> None:
    result = Backtest(
        bars_frame([flat(100.0)] * 3), scripted({0: [lambda s: s.sell(1.0)]}), cash=1_000
    ).run()
    reason = result.orders["reason"][0]
    assert "spot: no short" in reason and "perpetual" in reason and "margin account" in reason
    with pytest.raises(SetupError, match=r"strategy\.params\.short: SmaCross goes short"):
        Backtest(bars_frame([flat(100.0)] * 40), SmaCross).run(fast=2, slow=5, short=True)


# --- funding ------------------------------------------------------------------------------------------


def test_a_constant_short_pays_and_receives_exactly_the_funding_of_each_timestamp() -> None:
    bars = xrp_bars()
    quantity = 500.0
    result = Backtest(
        bars,
        scripted({0: [lambda s: s.sell(quantity)]}),
        cash=1_000,
        instrument=Instrument(XRP, leverage=3),
        funding=FUNDING,
        mark=MARKS,
    ).run()
    # Independently: the short fills at the second bar's open and is held from the second bar's
    # close on; a funding at f is paid by the position held after every bar that closed by f, at
    # the close of the latest mark bar that closed by f.
    opened_by = START_MS + 2 * HOUR_MS
    last_close = int(bars["timestamp_ms"][-1]) + HOUR_MS
    marks = pl.read_csv(MARKS)
    expected = []
    for ts, rate in pl.read_csv(FUNDING).iter_rows():
        if not (opened_by <= ts < last_close):
            continue
        mark_close = marks.filter(pl.col("timestamp_ms") + HOUR_MS <= ts)["close"][-1]
        expected.append((ts, rate * -quantity * 1.0 * mark_close))
    paid = result.funding
    assert paid["ts"].dt.epoch("ms").to_list() == [ts for ts, _ in expected]
    assert paid["amount"].to_list() == [amount for _, amount in expected]
    assert len(expected) == 5
    assert result.stats["funding_paid"] == sum(amount for _, amount in expected)
    assert result.equity["funding"][-1] == pytest.approx(result.stats["funding_paid"], rel=1e-12)
    assert result.trades["funding"][0] == pytest.approx(result.stats["funding_paid"], rel=1e-12)


def test_funding_or_mark_series_that_do_not_fit_the_run_are_refused() -> None:
    bars = xrp_bars()
    perp = Instrument(XRP)
    strategy = scripted({})
    late = pl.read_csv(FUNDING).filter(pl.col("timestamp_ms") > END_MS - 6 * HOUR_MS)
    with pytest.raises(SetupError, match="funding series for XRP/USDT:USDT does not cover the run"):
        Backtest(bars, strategy, instrument=perp, funding=late).run()
    full = pl.read_csv(FUTURES)
    with pytest.raises(SetupError, match="mark series for XRP/USDT:USDT does not cover the run"):
        Backtest(full, strategy, instrument=perp, mark=MARKS).run()
    with pytest.raises(SetupError, match="a funding series for 'ETH/USDT:USDT', which has no bars"):
        Backtest(bars, strategy, instrument=perp, funding={"ETH/USDT:USDT": FUNDING}).run()
    with pytest.raises(SetupError, match="contracts only"):
        Backtest(bars, strategy, funding=FUNDING).run()


def test_shipped_perp_config_shows_funding_in_its_stats() -> None:
    from backtester.config_file import load_config
    from backtester.engine import run_config
    from backtester.runs.inputs import load_data

    cfg = load_config("configs/perp_short.toml")
    data = load_data(cfg)
    result = run_config(cfg, data.frames, data.repairs, marks=data.marks, funding=data.funding)
    assert result.account == "margin"
    assert result.stats["short_trades"] >= 1 and result.stats["long_trades"] >= 1
    assert result.stats["funding_paid"] != 0.0


# --- liquidation --------------------------------------------------------------------------------------


def test_an_isolated_long_is_liquidated_at_its_liquidation_price_with_the_fee() -> None:
    perp = Instrument("BTC/USDT:USDT", leverage=10)
    rows = [flat(100.0), flat(100.0), (99.0, 99.5, 85.0, 86.0, 10.0), flat(86.0)]
    bt = Backtest(
        bars_frame(rows), scripted({0: [lambda s: s.buy(50.0)]}), cash=1_000, instrument=perp
    )
    engine = bt.engine()
    events: list[PositionLiquidated] = []
    assert engine.modules is not None
    engine.modules.bus.subscribe(PositionLiquidated, events.append)
    result = engine.run()
    level = isolated_liquidation_price(500.0, 50.0, 100.0, 0.004, 0.0)
    _, exit_ = result.fills.to_dicts()
    assert (exit_["side"], exit_["quantity"], exit_["price"], exit_["tag"]) == (
        "sell",
        50.0,
        level,
        "liquidation",
    )
    left = 500.0 + 50.0 * (level - 100.0)
    assert exit_["fee"] == pytest.approx(min(0.0125 * 50.0 * level, left), rel=1e-12)
    assert exit_["order_id"] < 0
    (event,) = events
    assert (event.liquidation_price, event.order.tag) == (level, "liquidation")
    assert result.trades["liquidated"].to_list() == [True]
    assert result.stats["liquidations"] == 1
    # The trader loses the whole margin (the loss plus what was left, taken as the fee).
    assert result.equity["equity"][-1] == pytest.approx(1_000.0 - 500.0, rel=1e-12)


def test_a_gap_past_the_liquidation_price_loses_no_more_than_the_margin() -> None:
    perp = Instrument("BTC/USDT:USDT", leverage=5)
    rows = [flat(100.0), flat(100.0), (60.0, 61.0, 55.0, 58.0, 10.0), flat(58.0)]
    result = Backtest(
        bars_frame(rows), scripted({0: [lambda s: s.buy(10.0)]}), cash=1_000, instrument=perp
    ).run()
    liquidation = result.fills.filter(pl.col("tag") == "liquidation").to_dicts()[0]
    # Bankruptcy price: where 10 units entered at 100 have lost their 200 of margin.
    assert liquidation["price"] == 80.0
    assert liquidation["fee"] == 0.0
    assert result.equity["equity"][-1] == 800.0


def test_cross_margin_liquidates_every_cross_position_when_the_account_runs_out() -> None:
    btc = Instrument("BTC/USDT:USDT", leverage=10, margin_mode="cross")
    eth = Instrument("ETH/USDT:USDT", leverage=10, margin_mode="cross")
    steady = [flat(100.0)] * 6
    falling = [flat(100.0), flat(100.0), flat(100.0), (100.0, 100.0, 40.0, 45.0, 1.0)] + [
        flat(45.0)
    ] * 2

    class BuyBoth(Strategy[Any]):
        def on_bar(self, bar: Bar) -> None:
            if bar.index == 0 and bar.instrument == eth.symbol:  # both have a bar now
                self.buy(20.0, instrument=btc.symbol)
                self.buy(20.0, instrument=eth.symbol)

    bt = Backtest(
        {btc.symbol: bars_frame(falling), eth.symbol: bars_frame(steady)},
        BuyBoth,
        cash=1_000,
        instrument={btc.symbol: btc, eth.symbol: eth},
    )
    result = bt.run()
    liquidations = result.fills.filter(pl.col("tag") == "liquidation")
    assert sorted(liquidations["instrument"].to_list()) == [btc.symbol, eth.symbol]
    assert result.stats["liquidations"] == 2
    # The triggering position closes at the price where cross equity met the maintenance margin.
    btc_price = liquidations.filter(pl.col("instrument") == btc.symbol)["price"][0]
    cross_equity = 1_000.0 + 20.0 * (btc_price - 100.0)
    maintenance = 20.0 * btc_price * 0.004 + 20.0 * 100.0 * 0.004
    assert cross_equity == pytest.approx(maintenance, rel=1e-9)
    assert liquidations.filter(pl.col("instrument") == eth.symbol)["price"][0] == 100.0


# --- bad input ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instrument", "account", "message"),
    [
        (Instrument("BTC/USDT:USDT"), "cash", "needs a margin account"),
        (Instrument("BTC/USDT"), "margin", "spot margin trading is not modeled"),
        (Instrument("BTC/USD:BTC", linear=False), None, r"inverse \(coin-margined\) contracts"),
    ],
)
def test_accounts_that_do_not_fit_the_instrument_are_refused(
    instrument: Instrument, account: Any, message: str
) -> None:
    with pytest.raises(SetupError, match=message):
        Backtest(
            bars_frame([flat(100.0)] * 3), scripted({}), instrument=instrument, account=account
        ).run()


def test_a_saved_perpetual_notebook_run_verifies_with_its_mark_and_funding(tmp_path: Path) -> None:
    from tests.cli_support import run_cli

    bt = Backtest(
        xrp_bars(),
        SmaCross,
        cash=10_000,
        fee_rate=0.0004,
        instrument=Instrument(XRP, leverage=2),
        funding=pl.read_csv(FUNDING),
        mark=MARKS,
    )
    result = bt.run(fast=3, slow=6, short=True, save=tmp_path)
    assert result.run_dir is not None
    config = (result.run_dir / "config.toml").read_text()
    assert 'series = "funding"' in config and 'series = "mark"' in config
    done = run_cli("verify", str(result.run_dir))
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_compiled_path_runs_isolated_and_cross_margin_perpetuals() -> None:
    for margin_mode in ("isolated", "cross"):
        perp = Instrument(XRP, leverage=2, margin_mode=margin_mode)
        runs = {
            mode: Backtest(xrp_bars(), SmaCross, cash=10_000, instrument=perp, mode=mode)
            for mode in ("auto", "compiled", "signal", "dense")
        }
        digests = {mode: bt.run(fast=3, slow=6, short=True).digest for mode, bt in runs.items()}
        assert len(set(digests.values())) == 1
        assert runs["auto"].engine(fast=3, slow=6, short=True).mode == "compiled"
