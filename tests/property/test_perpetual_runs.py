"""Perpetual runs on random bars with random long/short order streams, leverage, margin modes and
funding: the venue's account and the client side's agree at every bar, the books balance, and signal mode gives the
dense loop's digest bit for bit (liquidations included)."""

from __future__ import annotations

import math
from typing import Any

import polars as pl
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from backtester import Backtest, Instrument, RunResult
from backtester.accounting.accounts import Account
from backtester.domain.messages import Bar
from tests.engine_support import BAR_MS, T0_MS, Observed, bars_frame
from tests.property.test_engine_properties import fee_models
from tests.property.test_signal_mode import Action, long_rows, sparse_scripts, with_active_bars

CASH = 1_000.0
SYMBOL = "BTC/USDT:USDT"

perpetuals = st.builds(
    lambda leverage, mode, size: Instrument(
        SYMBOL, leverage=leverage, margin_mode=mode, contract_size=size
    ),
    st.sampled_from([1.0, 2.0, 5.0, 20.0]),
    st.sampled_from(["isolated", "cross"]),
    st.sampled_from([1.0, 0.5]),
)


@st.composite
def funding_series(draw: st.DrawFn, bars: int) -> pl.DataFrame:
    """A funding every few bars, a few ms after the boundary, as exchanges stamp them."""
    every = draw(st.integers(1, 4))
    times = [T0_MS + k * BAR_MS + draw(st.integers(0, 19)) for k in range(0, bars + 1, every)]
    rates = draw(
        st.lists(
            st.sampled_from([0.0001, -0.0003, 0.002, -0.01]),
            min_size=len(times),
            max_size=len(times),
        )
    )
    return pl.DataFrame({"timestamp_ms": times, "funding_rate": rates})


def state(account: Account) -> tuple[Any, ...]:
    positions = tuple(
        (p.quantity, p.avg_price, p.realized_pnl, p.margin, p.funding, p.fees)
        for p in account.positions.values()
    )
    return (account.cash, account.fees_paid, account.funding_paid, account.realized_pnl, positions)


def run(
    rows: list[Any],
    script: dict[int, list[Action]],
    instrument: Instrument,
    funding: pl.DataFrame,
    fees: Any,
    intrabar: str,
    mode: str,
    check: bool = False,
) -> RunResult:
    bt = Backtest(
        bars_frame(rows),
        with_active_bars(script),
        cash=CASH,
        fees=fees,
        instrument=instrument,
        funding=funding,
        intrabar=intrabar,
        mode=mode,  # type: ignore[arg-type]
    )
    seen = Observed(bt.engine())
    if check:
        modules = seen.engine.events
        # One client-side account, which the ledger books (adr/0023); the venue keeps its own.
        client = seen.ledger.account
        assert modules.risk.account is client and seen.engine.ctx.account is client

        def agree(bar: Bar) -> None:
            assert state(modules.venue.account) == state(client), bar.index

        seen.bus.subscribe(Bar, agree, settled=True)
    return seen.engine.run()


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    long_rows().flatmap(
        lambda rows: st.tuples(st.just(rows), sparse_scripts(len(rows)), funding_series(len(rows)))
    ),
    perpetuals,
    fee_models,
    st.sampled_from(["ohlc", "pessimistic"]),
)
def test_perpetual_runs_agree_across_modules_balance_and_match_in_signal_mode(
    case: tuple[list[Any], dict[int, list[Action]], pl.DataFrame],
    instrument: Instrument,
    fees: Any,
    intrabar: str,
) -> None:
    rows, script, funding = case
    dense = run(rows, script, instrument, funding, fees, intrabar, "dense", check=True)
    signal = run(rows, script, instrument, funding, fees, intrabar, "signal")
    assert signal.digest == dense.digest
    assert signal.funding.equals(dense.funding)
    assert signal.stats == dense.stats or _same_with_nan(signal.stats, dense.stats)

    # Equity = initial + realized + unrealized - fees - funding, at the last bar.
    stats = dense.stats
    event(f"liquidated: {stats['liquidations'] > 0}")
    event(f"shorted: {(dense.trades['side'] == 'short').any() if dense.trades.height else False}")
    event(f"funding paid: {dense.funding.height > 0}")
    final = float(dense.equity["equity"][-1])
    realized_and_open = float(dense.trades["pnl"].sum()) if dense.trades.height else 0.0
    # Trade P&L is net of fees and funding paid inside trades; funding paid while flat is none.
    assert math.isclose(final, CASH + realized_and_open, rel_tol=1e-9, abs_tol=1e-7), (
        final,
        CASH + realized_and_open,
        stats["liquidations"],
    )


def _same_with_nan(a: dict[str, Any], b: dict[str, Any]) -> bool:
    if a.keys() != b.keys():
        return False
    for key, x in a.items():
        y = b[key]
        if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
            continue
        if x != y:
            return False
    return True
