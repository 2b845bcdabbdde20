"""What an observer on the bus sees: every message of every type, in delivery order, hashed, for
the golden cases and variants of them that take other paths through the order pipeline (fills at
the close, partial fills against volume, the bar path read by direction, cross margin, limit and
linked orders on a synthetic series), in dense and signal mode.

The result digests pin the books; this pins the conversation that produced them. A change to how
modules hand orders to each other must leave both alone. If the stream changes on purpose, the
new digests come from `python -m tests.regression.test_event_stream`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import polars as pl
import pytest

from backtester import Strategy, TimeInForce
from backtester.config import FillConfig, IntrabarPath, RunConfig, VolumeShareSlippageSpec
from backtester.config_file import load_config
from backtester.domain.enums import BUY, SELL
from backtester.domain.instrument import Instrument, MarginMode
from backtester.domain.messages import Bar
from backtester.engine import assembly
from backtester.engine.engine import Engine
from backtester.engine.setup import EngineSetup, Mode
from backtester.execution.fees import MakerTakerFee
from backtester.execution.slippage import FixedBpsSlippage
from backtester.runs.inputs import load_data
from backtester.strategy.base import NoParams
from tests.engine_support import message_stream

ROOT = Path(__file__).resolve().parents[2] if __name__ != "__main__" else Path.cwd()


def observed(engine: Engine) -> tuple[int, str]:
    """The number of messages an observer of every type saw and the hash of them in delivery order
    (`message_stream`)."""
    count, digest, _ = message_stream(engine)
    # Every booking of the venue's was taken over by the client-side account (adr/0029).
    assert engine.events.ledger.in_step
    return count, digest[:20]


Variant = Callable[[RunConfig, dict[str, Instrument]], tuple[RunConfig, dict[str, Instrument]]]


def _same(cfg: RunConfig, instruments: dict[str, Instrument]) -> tuple[RunConfig, Any]:
    return cfg, instruments


def _on_close(cfg: RunConfig, instruments: dict[str, Instrument]) -> tuple[RunConfig, Any]:
    return msgspec.structs.replace(cfg, fill=FillConfig(trade_on_close=True)), instruments


def _volume_ohlc(cfg: RunConfig, instruments: dict[str, Instrument]) -> tuple[RunConfig, Any]:
    cfg = msgspec.structs.replace(
        cfg,
        slippage=VolumeShareSlippageSpec(volume_limit=0.02, price_impact=0.1),
        fill=FillConfig(intrabar=IntrabarPath.OHLC),
    )
    return cfg, instruments


def _cross(cfg: RunConfig, instruments: dict[str, Instrument]) -> tuple[RunConfig, Any]:
    crossed = {
        s: msgspec.structs.replace(i, margin_mode=MarginMode.CROSS) for s, i in instruments.items()
    }
    return cfg, crossed


def config_engine(case: str, variant: Variant, mode: Mode) -> Engine:
    cfg = load_config(str(ROOT / "golden" / case / "config.toml"))
    cfg, instruments = variant(cfg, assembly.instruments(cfg))
    data = load_data(cfg)
    strategy = assembly.strategy_class(cfg.strategy.name)
    setup = EngineSetup(
        initial_cash=cfg.cash,
        account=cfg.account.kind,
        fill=cfg.fill,
        risk=cfg.risk,
        seed=cfg.seed,
        stats=cfg.stats,
        mode=mode,
    )
    return Engine(
        data.frames,
        instruments,
        strategy,
        assembly.strategy_params(strategy, cfg.strategy),
        assembly.fee_model(cfg.fees),
        assembly.slippage_model(cfg.slippage),
        setup,
        data.repairs,
        marks=data.marks,
        funding=data.funding,
        timeframes=data.higher,
    )


class Orders(Strategy[Any]):
    """Every few bars one of: a bracket, a one-cancels-other pair, a resting limit, a trailing
    stop, a day order, a modify, a cancel, a market exit and an order risk denies; on a seeded
    random walk."""

    def active_bars(self) -> np.ndarray:
        return np.arange(5, self.ctx.data[self.ctx.primary].height, 7, dtype=np.int64)

    def on_bar(self, bar: Bar) -> None:
        if bar.index < 5 or (bar.index - 5) % 7:
            return
        step = (bar.index - 5) // 7 % 8
        close = bar.close
        held = self.position
        if step == 0:
            self.bracket(BUY, fraction=0.3, sl_pct=0.4, tp_pct=0.6)
        elif step == 1:
            self.oco(
                self.order(BUY, 0.05, limit=close * 0.998),
                self.order(BUY, 0.05, stop=close * 1.003),
            )
        elif step == 2:
            self.buy(0.02, limit=close * 0.997, tag="dip")
        elif step == 3 and held > 0:
            self.trailing_stop(SELL, held / 2, offset=0.3, unit="percent", reduce_only=True)
        elif step == 4:
            self.buy(0.01, limit=close * 0.99, time_in_force=TimeInForce.DAY)
        elif step == 5:
            for order in self.open_orders:
                if order.limit_price is not None and order.parent_id is None:
                    self.modify(order.order_id, price=order.limit_price * 1.001)
                    break
        elif step == 6:
            for order in self.open_orders:
                self.cancel(order.order_id)
                break
        elif step == 7:
            self.close()
            self.buy(1_000.0, tag="too big")  # denied: not enough cash


def walk(rows: int, seed: int = 7) -> pl.DataFrame:
    rng = np.random.Generator(np.random.PCG64(seed))
    close = np.round(100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.002, rows))), 2)
    open_ = np.concatenate(([100.0], close[:-1]))
    high = np.round(np.maximum(open_, close) * (1.0 + np.abs(rng.normal(0.0, 0.001, rows))), 2)
    low = np.round(np.minimum(open_, close) * (1.0 - np.abs(rng.normal(0.0, 0.001, rows))), 2)
    return pl.DataFrame(
        {
            "ts": 1_700_000_000_000_000_000 + np.arange(rows, dtype=np.int64) * 60_000_000_000,
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": np.round(rng.gamma(2.0, 5.0, rows), 4),
        }
    )


def orders_engine(mode: Mode, trade_on_close: bool) -> Engine:
    symbol = "BTC/USDT"
    instrument = Instrument(symbol, tick_size=0.01, lot_size=0.0001)
    return Engine(
        {symbol: walk(3_000)},
        {symbol: instrument},
        Orders,
        NoParams(),
        MakerTakerFee(maker=0.0002, taker=0.0005),
        FixedBpsSlippage(bps=1.0),
        EngineSetup(
            initial_cash=10_000.0, fill=FillConfig(trade_on_close=trade_on_close), mode=mode
        ),
    )


CONFIG_CASES: list[tuple[str, str, Variant, Mode]] = [
    ("sma_cross_binance", "as is", _same, "dense"),
    ("sma_cross_binance", "as is", _same, "signal"),
    ("sma_cross_binanceus", "as is", _same, "signal"),
    ("sma_extended_binance", "as is", _same, "dense"),
    ("sma_extended_binance", "on close", _on_close, "dense"),
    ("sma_extended_binance", "volume share, ohlc", _volume_ohlc, "dense"),
    ("sma_extended_binanceus", "as is", _same, "dense"),
    ("perp_liquidation", "as is", _same, "dense"),
    ("perp_liquidation", "as is", _same, "signal"),
    ("perp_liquidation", "cross", _cross, "dense"),
    ("perp_short_funding", "as is", _same, "dense"),
    ("perp_short_funding", "as is", _same, "signal"),
    ("perp_short_funding", "cross", _cross, "signal"),
]

# (messages seen, hash of the stream)
EXPECTED: dict[str, tuple[int, str]] = {
    "sma_cross_binance/as is/dense": (37250, "1ead60e8e3c0d14896ea"),
    "sma_cross_binance/as is/signal": (8861, "8ea044d801ffe28fae26"),
    "sma_cross_binanceus/as is/signal": (17285, "d45df968344dd7dbaea1"),
    "sma_extended_binance/as is/dense": (35338, "c2d0b8caf882bd7daca9"),
    "sma_extended_binance/on close/dense": (35356, "f005f072a02dd8f8110c"),
    "sma_extended_binance/volume share, ohlc/dense": (36832, "9508c0c8845140324988"),
    "sma_extended_binanceus/as is/dense": (33082, "b33de1c28cf1c952bba5"),
    "perp_liquidation/as is/dense": (218, "cda368ae5c7a88c4308c"),
    "perp_liquidation/as is/signal": (161, "bde9f4b5ea2fdc764668"),
    "perp_liquidation/cross/dense": (220, "ed32f2dbfbbc13750701"),
    "perp_short_funding/as is/dense": (101, "895eff87ce413c636baf"),
    "perp_short_funding/as is/signal": (69, "f50c0c967e7620c1ca6f"),
    "perp_short_funding/cross/signal": (93, "28c7af7610b025c5aa7a"),
    "orders/next open/dense": (5317, "8a93eb0a7fd7ab4bdc4b"),
    "orders/next open/signal": (3123, "a48f793a22db7b55d13d"),
    "orders/on close/dense": (5317, "9fe00b87b350aaeef0c1"),
    "orders/on close/signal": (3019, "315c3c9ddae30f95fbfb"),
}


@pytest.mark.parametrize(
    ("case", "variant", "mode"),
    [(case, variant, mode) for case, variant, _, mode in CONFIG_CASES],
)
def test_a_golden_case_delivers_the_same_messages_in_the_same_order(
    case: str, variant: str, mode: Mode
) -> None:
    (change,) = [c for name, v, c, m in CONFIG_CASES if (name, v, m) == (case, variant, mode)]
    assert observed(config_engine(case, change, mode)) == EXPECTED[f"{case}/{variant}/{mode}"]


@pytest.mark.parametrize("mode", ["dense", "signal"])
@pytest.mark.parametrize("trade_on_close", [False, True])
def test_limit_and_linked_orders_deliver_the_same_messages_in_the_same_order(
    mode: Mode, trade_on_close: bool
) -> None:
    got = observed(orders_engine(mode, trade_on_close))
    assert got == EXPECTED[f"orders/{'on close' if trade_on_close else 'next open'}/{mode}"]


def _computed() -> dict[str, tuple[int, str]]:
    streams = {
        f"{case}/{variant}/{mode}": observed(config_engine(case, change, mode))
        for case, variant, change, mode in CONFIG_CASES
    }
    for close in (False, True):
        for mode in ("dense", "signal"):
            key = f"orders/{'on close' if close else 'next open'}/{mode}"
            streams[key] = observed(orders_engine(mode, close))
    return streams


if __name__ == "__main__":
    for key, value in _computed().items():
        print(f"    {key!r}: {value!r},")
