"""What a strategy sees and can do: time, position, cash, open orders, past bars, indicators, orders."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import msgspec
import numpy as np
import polars as pl

from backtester.accounting.accounts import Account, MarginAccount
from backtester.core.clock import SimClock
from backtester.domain.enums import GTC, MARKET, Side, TimeInForce
from backtester.domain.marks import MarkBars
from backtester.domain.messages import (
    Bar,
    CancelOrder,
    ModifyOrder,
    SubmitOrder,
    SubmitOrderList,
)
from backtester.strategy.causal import CausalFrames
from backtester.strategy.timeframes import TimeframeView

# No options: `StrategyContext.new_order`'s default, never written to.
_NO_OPTIONS: Mapping[str, object] = {}


class StrategyError(RuntimeError):
    """A strategy asked for something impossible (look-ahead, unknown instrument or order)."""


class OpenOrder(msgspec.Struct):
    """The strategy's view of an order that is live at the venue."""

    order_id: int
    instrument: str
    side: Side
    order_type: str
    quantity: float | None
    fraction: float | None
    limit_price: float | None
    stop_price: float | None
    tag: str
    filled_quantity: float = 0.0
    # Linked orders: released by this order's fill; one-cancels-other group.
    parent_id: int | None = None
    oco_id: int | None = None
    # A linked order that waits for its parent's fill is not live yet.
    live: bool = True


class StrategyContext:
    """Built by the composition root. Reads are as of the bar being handled; there is no look-ahead.

    `data[instrument]` is the whole input frame in `on_start`, for vectorized precomputation whose
    results the strategy then reads at the current index (`register_indicator` / `indicator`); in
    `on_bar` and later it is the frame up to the current bar only (`strategy.causal.CausalFrames`).
    """

    def __init__(
        self,
        clock: SimClock,
        publish: Callable[[object], None],
        data: dict[str, pl.DataFrame],
        quote_currency: str,
        account: Account,
        marks: dict[str, MarkBars],
        timeframes: Mapping[tuple[str, str], TimeframeView] | None = None,
    ) -> None:
        self._clock = clock
        self._publish = publish
        # `publish` without the method around it, for the strategy API's per-order path.
        self.send: Callable[[SubmitOrder], None] = publish
        self._frames = data
        self.instruments: tuple[str, ...] = tuple(data)
        self.primary = self.instruments[0]
        self.quote_currency = quote_currency
        # The run's client-side account: the ledger books it, the context reads it (adr/0023).
        self.account = account
        # Signed quantity per instrument (below zero is short), as the account keeps it.
        self.positions: dict[str, float] = account.quantities
        self.open_orders: dict[int, OpenOrder] = {}
        self.last_bar: dict[str, Bar] = {}
        self.data: Mapping[str, pl.DataFrame] = CausalFrames(data, self.last_bar)
        self.marks = _LatestMarks(marks, self.last_bar)
        self._indicators: dict[str, dict[str, np.ndarray]] = {i: {} for i in self.instruments}
        # Only what `register_indicator` was given (not data columns read through `indicator`).
        self._registered: dict[str, dict[str, np.ndarray]] = {i: {} for i in self.instruments}
        self._next_order_id = 1
        self._timeframes = dict(timeframes or {})

    # --- reads ---------------------------------------------------------------------------------

    @property
    def now(self) -> int:
        """Simulation time, int64 UTC nanoseconds."""
        return self._clock.now

    def index(self, instrument: str | None = None) -> int:
        """Row of the latest bar seen for the instrument (-1 before its first bar)."""
        bar = self.last_bar.get(instrument or self.primary)
        return -1 if bar is None else bar.index

    def position(self, instrument: str | None = None) -> float:
        return self.positions[instrument or self.primary]

    @property
    def equity(self) -> float:
        """Cash plus every position valued at its latest mark (the latest close without a mark
        series); on a margin account, the wallet balance plus unrealized profit."""
        return self.account.equity(self.marks)

    @property
    def buying_power(self) -> float:
        """What a new position may spend now: cash on a cash account, available margin on a margin
        account (orders still open are not deducted)."""
        return self.account.buying_power(self.marks)

    def liquidation_price(self, instrument: str | None = None) -> float | None:
        """The mark at which the position would be liquidated (None when flat or on a cash account)."""
        account = self.account
        if not isinstance(account, MarginAccount):
            return None
        return account.liquidation_price(instrument or self.primary, self.marks)

    @property
    def cash(self) -> float:
        return self.account.cash

    @property
    def fees_paid(self) -> float:
        return self.account.fees_paid

    @property
    def funding_paid(self) -> float:
        return self.account.funding_paid

    @property
    def realized_pnl(self) -> float:
        return self.account.realized_pnl

    @property
    def avg_prices(self) -> dict[str, float]:
        """Average entry price of each instrument's open position (0 when flat)."""
        return {symbol: p.avg_price for symbol, p in self.account.positions.items()}

    def window(self, n: int, instrument: str | None = None) -> pl.DataFrame:
        """The last `n` bars up to and including the current one (fewer at the start)."""
        symbol = instrument or self.primary
        end = self.index(symbol) + 1
        return self._frames[symbol].slice(max(0, end - n), min(n, end))

    def bars(self, timeframe: str, instrument: str | None = None) -> pl.DataFrame:
        """Bars of a higher timeframe the strategy declares (`Strategy.timeframes`): in `on_start`
        all of them; from the first bar on, the last closed ones only (at most the number declared;
        a bar closes at its open + timeframe). Columns ts (open time, ns) and OHLCV."""
        view = self._view(timeframe, instrument)
        return view.frame if not self.last_bar else view.closed(self._clock.now)

    def align(
        self, timeframe: str, values: np.ndarray, instrument: str | None = None
    ) -> np.ndarray:
        """Per-bar `values` of a higher timeframe (one per row of `bars(timeframe)` in `on_start`)
        spread over this instrument's own bars: each bar gets the value of the latest higher bar
        closed by its close, NaN before the first; for vectorized signals without look-ahead."""
        view = self._view(timeframe, instrument)
        if len(values) != view.frame.height:
            raise StrategyError(
                f"align({timeframe!r}): {len(values)} values for {view.frame.height} bars"
            )
        return view.aligned(values)

    def _view(self, timeframe: str, instrument: str | None) -> TimeframeView:
        symbol = instrument or self.primary
        view = self._timeframes.get((symbol, timeframe))
        if view is None:
            declared = sorted({tf for _, tf in self._timeframes}) or ["none"]
            raise StrategyError(
                f"timeframe {timeframe!r} of {symbol} is not declared (Strategy.timeframes: "
                f"{', '.join(declared)})"
            )
        return view

    def register_indicator(
        self, name: str, values: np.ndarray, instrument: str | None = None
    ) -> None:
        symbol = instrument or self.primary
        if len(values) != self._frames[symbol].height:
            raise StrategyError(
                f"indicator {name!r} has {len(values)} values for "
                f"{self._frames[symbol].height} bars"
            )
        self._indicators[symbol][name] = self._registered[symbol][name] = np.asarray(values)

    def registered_indicators(self) -> dict[str, dict[str, np.ndarray]]:
        """instrument -> name -> values of every registered indicator (for the look-ahead check)."""
        return {symbol: dict(named) for symbol, named in self._registered.items()}

    def indicator(self, name: str, instrument: str | None = None, lag: int = 0) -> float:
        """Value of a registered indicator or extra data column at the current bar (or `lag` bars ago)."""
        symbol = instrument or self.primary
        i = self.index(symbol) - lag
        if lag < 0:
            raise StrategyError("indicator lag must be >= 0: reading ahead is look-ahead")
        if i < 0:
            return float("nan")
        column = self._indicators[symbol].get(name)
        if column is None:
            column = self._column(symbol, name)
        return float(column[i])

    def _column(self, symbol: str, name: str) -> np.ndarray:
        frame = self._frames[symbol]
        if name not in frame.columns:
            known = sorted([*self._indicators[symbol], *frame.columns])
            raise StrategyError(f"unknown indicator {name!r}; known: {', '.join(known)}")
        column = frame[name].to_numpy()
        self._indicators[symbol][name] = column
        return column

    # --- orders --------------------------------------------------------------------------------

    def order(
        self,
        side: Side,
        *,
        instrument: str | None = None,
        quantity: float | None = None,
        fraction: float | None = None,
        order_type: str = MARKET,
        limit_price: float | None = None,
        stop_price: float | None = None,
        time_in_force: TimeInForce = GTC,
        tag: str = "",
        **options: object,
    ) -> SubmitOrder:
        """A new order with the next id, priced from the latest bar; `options` are any other
        `SubmitOrder` fields (flags, trailing offsets, links). Not sent: `submit` or
        `submit_list` sends it."""
        return self.new_order(
            side,
            instrument,
            quantity,
            fraction,
            order_type,
            limit_price,
            stop_price,
            time_in_force,
            tag,
            options,
        )

    def new_order(
        self,
        side: Side,
        instrument: str | None,
        quantity: float | None,
        fraction: float | None,
        order_type: str,
        limit_price: float | None,
        stop_price: float | None,
        time_in_force: TimeInForce,
        tag: str,
        options: Mapping[str, object] = _NO_OPTIONS,
    ) -> SubmitOrder:
        """`order` with its arguments in order: the strategy API's per-order path (positional
        arguments are bound faster than keywords, and it builds no dict of options)."""
        symbol = instrument or self.primary
        last = self.last_bar.get(symbol)
        if last is None:
            raise StrategyError(f"no bar seen yet for {symbol!r}: cannot price an order")
        order_id = self._next_order_id
        self._next_order_id += 1
        try:
            # Positional, in SubmitOrder's field order (order_id, instrument, side, order_type,
            # ts_init, ref_price, quantity, fraction, limit_price, stop_price, time_in_force, tag).
            return SubmitOrder(
                order_id,
                symbol,
                side if type(side) is Side else Side(side),
                str(order_type),
                self._clock.now,
                last.close,
                quantity,
                fraction,
                limit_price,
                stop_price,
                time_in_force,
                tag,
                **options,  # type: ignore[arg-type]
            )
        except TypeError as exc:
            raise StrategyError(f"order options: {exc}") from None

    def submit(
        self,
        side: Side,
        *,
        instrument: str | None = None,
        quantity: float | None = None,
        fraction: float | None = None,
        order_type: str = MARKET,
        limit_price: float | None = None,
        stop_price: float | None = None,
        time_in_force: TimeInForce = GTC,
        tag: str = "",
        **options: object,
    ) -> int:
        """Send an order to Risk; returns its id. The outcome arrives as events, never as a return."""
        order = self.order(
            side,
            instrument=instrument,
            quantity=quantity,
            fraction=fraction,
            order_type=order_type,
            limit_price=limit_price,
            stop_price=stop_price,
            time_in_force=time_in_force,
            tag=tag,
            **options,
        )
        self._publish(order)
        return order.order_id

    def publish(self, order: SubmitOrder) -> None:
        """Send an order built by `order`."""
        self._publish(order)

    def submit_list(self, orders: list[SubmitOrder]) -> list[int]:
        """Send linked orders (`order` builds them) as one command: all are accepted or all
        denied."""
        self._publish(SubmitOrderList(orders=tuple(orders), ts_init=self._clock.now))
        return [order.order_id for order in orders]

    def cancel(self, order_id: int) -> None:
        self._publish(CancelOrder(order_id=order_id, ts_init=self._clock.now))

    def modify(
        self,
        order_id: int,
        *,
        quantity: float | None = None,
        limit_price: float | None = None,
        stop_price: float | None = None,
    ) -> None:
        self._publish(
            ModifyOrder(
                order_id=order_id,
                ts_init=self._clock.now,
                quantity=quantity,
                limit_price=limit_price,
                stop_price=stop_price,
            )
        )


class _LatestMarks(Mapping[str, float]):
    """Each instrument's mark at the latest bar the strategy has seen."""

    def __init__(self, marks: dict[str, MarkBars], last_bar: dict[str, Bar]) -> None:
        self._marks = marks
        self._last_bar = last_bar
        self._closes: dict[str, list[float]] = {}

    def __getitem__(self, symbol: str) -> float:
        closes = self._closes.get(symbol)
        if closes is None:
            closes = self._closes[symbol] = self._marks[symbol].close.tolist()
        bar = self._last_bar.get(symbol)
        return closes[bar.index if bar is not None else 0]

    def __iter__(self) -> Iterator[str]:
        return iter(self._marks)

    def __len__(self) -> int:
        return len(self._marks)
