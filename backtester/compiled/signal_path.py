"""The compiled order path: a `SignalPlan` run bar by bar in one loop, with the exact arithmetic of
the event-driven modules (strategy -> risk -> venue -> ledger), for the configurations it covers
(`backtester.engine.compiled_path.unsupported` says which): a spot instrument on a cash account, or
a linear perpetual on an isolated margin account, long and short, with its funding.

The booking arithmetic is not written here: the loop calls the functions of
`backtester.accounting.arithmetic` that the accounts call (numba compiles them into the kernel), so
sizing, cash, positions and margin are the same code. What is left here is the order flow of a plan
(which order when, what a denial quotes), in the order the modules run it; the identity tests run
both paths and compare digests.

A margin position is liquidated as the venue does it (`execution.margin`): its liquidation price
from the same bracket rule, watched over each bar's mark path, filled at the mark where it is
reached (or the bankruptcy price past it) with the liquidation fee, orders resting on that bar
canceled. What the loop does not do is rest an order across bars: where a fill would be partial (a
bar's volume share, the margin available), it stops and says so, and the run is made on the event
path instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from backtester.accounting.arithmetic import (
    bankruptcy_price,
    book_fill,
    bracket_liquidation_price,
    fill_notional,
    liquidation_fee,
    liquidation_fill_price,
    opening_cost,
    position_value,
    quantity_for_budget,
    realized_pnl,
)
from backtester.accounting.limits import WITHIN_LIMITS, max_position_breach, position_room
from backtester.accounting.marking import longest_under_water, mark_bar
from backtester.compiled.hints import prefetch
from backtester.compiled.jit import kernel
from backtester.domain.grid import floor_on_grid, nearest_on_grid, step_scale
from backtester.domain.touch import reach_price
from backtester.domain.volume_share import volume_capacity, volume_share_price

# Order outcomes.
FILLED, DENIED, CANCELED = 0, 1, 2
# Why an order did not fill (the message is written by the caller, from `order_value`).
NO_REASON = 0
DENIED_NO_CASH = 1  # the risk engine: nothing available to spend (cash, or margin)
DENIED_BELOW_MIN_NOTIONAL = 2
DENIED_ABOVE_MAX_NOTIONAL = 3
CANCELED_SIZED_TO_ZERO = 4  # the venue: the fraction bought or sold nothing at the fill price
CANCELED_END_OF_DATA = 5
DENIED_LEVERAGE = 6  # the risk engine: the position would be above its bracket's leverage
DENIED_MAX_POSITION = 7  # the risk engine: the position would be above a max-position limit
CANCELED_LIQUIDATED = 8  # the venue: the position was liquidated while the order rested
DENIED_NO_ROOM = 9  # the risk engine, capping: the position is at its limit already
DENIED_BALANCE = 10  # the risk engine: a capped order's cost is above the buying power
CANCELED_CAPPED_AT_FILL = 11  # the venue: the account could pay for part of the order (or none)
# What an order is: the plan's exit or entry, or the venue's liquidation of a position.
EXIT, ENTRY, LIQUIDATION = 0, 1, 2
# Why the loop stopped before the end (the run then takes the event path).
RAN_TO_THE_END = 0
STOPPED_FILL_RESTS = 2  # a fill would leave a remainder resting (sized again at a lower price)
STOPPED_VOLUME_CAPPED = 3  # a bar's volume share would fill an order in part (or not at all)

# How many bars ahead the loop asks for the prices it may read (about one memory latency of bars).
_AHEAD = 24
# Rows of the per-order integers.
_ROW, _SIDE, _OUTCOME, _REASON, _CLOSED, _KIND = range(6)
# The balances the loop books into: cash, signed position, fees paid, average entry price,
# the position's initial margin, funding paid; the bar whose volume fills used, and how much;
# the position's liquidation price and whether it is current (0 after a booking or a funding); the
# deepest drawdown of the equity marked after each bar, and its running peak after the last.
(
    _CASH,
    _HELD,
    _FEES,
    _ENTRY_PRICE,
    _MARGIN,
    _FUNDING,
    _VOLUME_ROW,
    _VOLUME_USED,
    _LEVEL,
    _LEVEL_CURRENT,
    _DEEPEST,
    _PEAK,
) = range(12)


class Contract(NamedTuple):
    """What the loop needs of a margin account's instrument (defaults: spot on a cash account)."""

    margin: bool = False
    shorts: bool = False
    # Cross margin (one position): the account's whole wallet and the position's unrealized profit
    # back it, instead of the position's own margin.
    cross: bool = False
    multiplier: float = 1.0
    leverage: float = 1.0
    # Maintenance brackets: upper notional and maximum leverage of each, in order (empty: none).
    tier_max_notional: np.ndarray = np.zeros(0)
    tier_max_leverage: np.ndarray = np.zeros(0)
    # The brackets liquidation prices are taken in (the instrument's, or its one default bracket):
    # maintenance rate and amount, lower and upper notional of each.
    maintenance_rate: np.ndarray = np.zeros(0)
    maintenance_amount: np.ndarray = np.zeros(0)
    maintenance_min_notional: np.ndarray = np.zeros(0)
    maintenance_max_notional: np.ndarray = np.zeros(0)
    liquidation_fee: float = 0.0
    # The mark over each bar, where it is watched for liquidation.
    mark_open: np.ndarray = np.zeros(0)
    mark_high: np.ndarray = np.zeros(0)
    mark_low: np.ndarray = np.zeros(0)
    mark_close: np.ndarray = np.zeros(0)
    # Funding payments due before bar `funding_row[k]`, ascending: rate and mark of each.
    funding_row: np.ndarray = np.zeros(0, np.int64)
    funding_rate: np.ndarray = np.zeros(0)
    funding_mark: np.ndarray = np.zeros(0)


class Simulated(NamedTuple):
    """The loop's record. Per order: submission row, side (+1 buy, -1 sell), what it is (`EXIT`,
    `ENTRY`, `LIQUIDATION`), outcome, reason, the value a denial quotes, the row it closed on, filled
    quantity and notional, the quantity a capped order was cut to (NaN: a fraction order), a second
    value a denial quotes. Per fill: order index, row, price, quantity, fee. Per bar, after it:
    cash, position, on a margin account the position at its entry price (`position_value`) and
    the funding paid so far (empty on a cash account), and
    (when the loop marks to market) the equity. Per funding payment (of the contract's list): its
    index there, quantity, amount, fills before it. Then the fees paid, what marking to market
    gives the statistics (`compiled.drawdown.mark_to_market`: the deepest drawdown, the running
    peak of the equity after the last bar, the longest time under water, the bars with a position
    held; inf, NaN, 0, 0 when the loop does not mark), the
    bars where two orders met at one price (the intrabar path decided), and why and where the
    loop stopped."""

    order_row: np.ndarray
    order_side: np.ndarray
    order_kind: np.ndarray
    order_outcome: np.ndarray
    order_reason: np.ndarray
    order_value: np.ndarray
    order_closed_row: np.ndarray
    order_filled_quantity: np.ndarray
    order_filled_notional: np.ndarray
    order_quantity: np.ndarray
    order_second_value: np.ndarray
    fill_order: np.ndarray
    fill_row: np.ndarray
    fill_price: np.ndarray
    fill_quantity: np.ndarray
    fill_fee: np.ndarray
    fill_leaves: np.ndarray
    cash: np.ndarray
    position: np.ndarray
    cost_basis: np.ndarray
    funding: np.ndarray
    equity: np.ndarray
    funding_index: np.ndarray
    funding_quantity: np.ndarray
    funding_amount: np.ndarray
    funding_fills_before: np.ndarray
    fees_paid: float
    deepest_drawdown: float
    peak_equity: float
    longest_drawdown: int
    exposed_bars: int
    path_decided_bars: int
    liquidations: int
    stopped: int
    stopped_row: int


def simulate(
    signal: np.ndarray,
    open_: np.ndarray,
    close: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    entry_fraction: float,
    exit_fraction: float,
    initial_cash: float,
    fee_rate: float,
    slip: float,
    min_notional: float,
    max_notional: float,
    trade_on_close: bool,
    contract: Contract | None = None,
    *,
    tick_size: float | None = None,
    lot_size: float | None = None,
    volume: np.ndarray | None = None,
    volume_limit: float = 0.0,
    price_impact: float = 0.0,
    max_position_quantity: float = math.nan,
    max_position_notional: float = math.nan,
    cap_limits: bool = False,
    ts: np.ndarray | None = None,
    unit_value: np.ndarray | None = None,
    allocate: Callable[[int, int], np.ndarray] | None = None,
    compiled: bool = True,
) -> Simulated:
    """Run the plan. `slip` is the fixed slippage as a fraction (bps * 1e-4, 0 for none); notional
    limits are NaN when absent (a comparison with NaN is false, as a missing limit never denies).
    `tick_size` and `lot_size` are the instrument's grids (None: none). With a `volume_limit` (> 0),
    slippage is volume-share (`domain.volume_share`) on the bars' `volume`, in place of `slip`.
    The max-position limits (`accounting.limits`) are NaN when absent; they deny an order that
    would cross one, or with `cap_limits` cut it to the room left (`risk.on_limit = "cap"`).
    With the bars' times `ts` (int64 nanoseconds) and the value of a unit of the position at each
    (`unit_value`: the close, or the mark times the contract size), the loop also marks the
    account to market after each bar, as `compiled.drawdown.mark_to_market` does over the cash and
    position it writes (the same function per bar), and keeps the equity. `allocate(rows,
    length)` gives the block of per-bar columns (default `np.empty`).
    `compiled=False` runs the same loop as plain Python."""
    c = contract or Contract()
    # 0 stands for no grid in the loop; the scales are the grids' decimal places (domain.grid).
    tick, tick_scale = (0.0, 1.0) if tick_size is None else (tick_size, step_scale(tick_size))
    lot, lot_scale = (0.0, 1.0) if lot_size is None else (lot_size, step_scale(lot_size))
    n = len(signal)
    # At most one order per signal bar, two where a short reverses (an exit and an entry); and a
    # liquidation per position, which an entry opened.
    signals = int(np.count_nonzero(signal))
    capacity = signals * (2 if c.shorts else 1) + (signals if c.margin else 0)
    payments = len(c.funding_row)
    # Allocated here, not in the kernel: numpy backs large arrays with huge pages, while memory the
    # kernel allocated would be faulted in page by page, which costs more than the loop itself.
    order_ints = np.zeros((6, capacity), np.int64)
    # Quoted value, filled quantity, filled notional, capped quantity, second quoted value.
    order_floats = np.zeros((5, capacity))
    order_floats[3] = math.nan
    fill_ints = np.zeros((2, capacity), np.int64)  # order index, row
    fill_floats = np.zeros((4, capacity))  # price, quantity, fee, leaves
    # One block per run for the per-bar columns.
    marking = ts is not None and unit_value is not None
    rows = (4 if c.margin else 2) + (1 if marking else 0)
    per_bar = np.empty((rows, n)) if allocate is None else allocate(rows, n)
    funding_ints = np.zeros((2, payments), np.int64)  # index in the contract's list, fills before
    funding_floats = np.zeros((2, payments))  # quantity, amount
    money = np.array([initial_cash, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, np.inf, np.nan])
    volumes = np.zeros(0) if volume is None else volume
    # Orders, fills, payments, decided bars, stop reason, stop row, liquidations, the longest time
    # under water, the bars with a position held.
    counts = np.zeros(9, np.int64)
    marks = (
        (c.mark_open, c.mark_high, c.mark_low, c.mark_close)
        if c.margin
        else (open_, high, low, close)
    )
    loop = _run_plan if compiled else _run_plan.py_func
    loop(
        signal,
        open_,
        close,
        high,
        low,
        entry_fraction,
        exit_fraction,
        fee_rate,
        slip,
        min_notional,
        max_notional,
        trade_on_close,
        tick,
        tick_scale,
        lot,
        lot_scale,
        np.ascontiguousarray(volumes, dtype=np.float64),
        volume_limit,
        price_impact,
        max_position_quantity,
        max_position_notional,
        cap_limits,
        c.margin,
        c.shorts,
        c.cross,
        c.multiplier,
        c.leverage,
        np.ascontiguousarray(c.tier_max_notional, dtype=np.float64),
        np.ascontiguousarray(c.tier_max_leverage, dtype=np.float64),
        np.ascontiguousarray(c.maintenance_rate, dtype=np.float64),
        np.ascontiguousarray(c.maintenance_amount, dtype=np.float64),
        np.ascontiguousarray(c.maintenance_min_notional, dtype=np.float64),
        np.ascontiguousarray(c.maintenance_max_notional, dtype=np.float64),
        c.liquidation_fee,
        np.ascontiguousarray(marks[0], dtype=np.float64),
        np.ascontiguousarray(marks[1], dtype=np.float64),
        np.ascontiguousarray(marks[2], dtype=np.float64),
        np.ascontiguousarray(marks[3], dtype=np.float64),
        np.ascontiguousarray(c.funding_row, dtype=np.int64),
        np.ascontiguousarray(c.funding_rate, dtype=np.float64),
        np.ascontiguousarray(c.funding_mark, dtype=np.float64),
        np.ascontiguousarray(ts if marking else np.zeros(0, np.int64), dtype=np.int64),
        np.ascontiguousarray(unit_value if marking else np.zeros(0), dtype=np.float64),
        per_bar[-1] if marking else np.zeros(0),
        order_ints,
        order_floats,
        fill_ints,
        fill_floats,
        per_bar,
        funding_ints,
        funding_floats,
        money,
        counts,
    )
    orders, fills, paid = int(counts[0]), int(counts[1]), int(counts[2])
    ints, floats = order_ints[:, :orders], order_floats[:, :orders]
    # A cash account has no cost basis or funding: no column-long zeros (a memset a run).
    none = np.zeros(0)
    return Simulated(
        order_row=ints[_ROW],
        order_side=ints[_SIDE],
        order_kind=ints[_KIND],
        order_outcome=ints[_OUTCOME],
        order_reason=ints[_REASON],
        order_value=floats[0],
        order_closed_row=ints[_CLOSED],
        order_filled_quantity=floats[1],
        order_filled_notional=floats[2],
        order_quantity=floats[3],
        order_second_value=floats[4],
        fill_order=fill_ints[0, :fills],
        fill_row=fill_ints[1, :fills],
        fill_price=fill_floats[0, :fills],
        fill_quantity=fill_floats[1, :fills],
        fill_fee=fill_floats[2, :fills],
        fill_leaves=fill_floats[3, :fills],
        cash=per_bar[0],
        position=per_bar[1],
        cost_basis=per_bar[2] if c.margin else none,
        funding=per_bar[3] if c.margin else none,
        equity=per_bar[-1] if marking else np.zeros(0),
        funding_index=funding_ints[0, :paid],
        funding_quantity=funding_floats[0, :paid],
        funding_amount=funding_floats[1, :paid],
        funding_fills_before=funding_ints[1, :paid],
        fees_paid=float(money[_FEES]),
        deepest_drawdown=float(money[_DEEPEST]),
        peak_equity=float(money[_PEAK]),
        longest_drawdown=int(counts[7]),
        exposed_bars=int(counts[8]),
        path_decided_bars=int(counts[3]),
        liquidations=int(counts[6]),
        stopped=int(counts[4]),
        stopped_row=int(counts[5]),
    )


@kernel(
    "void("
    "int8[::1], float64[::1], float64[::1], float64[::1], float64[::1], float64, float64, "
    "float64, float64, float64, float64, boolean, float64, float64, float64, float64, "
    "float64[::1], float64, float64, float64, float64, boolean, boolean, boolean, boolean, "
    "float64, "
    "float64, "
    "float64[::1], float64[::1], float64[::1], float64[::1], float64[::1], float64[::1], "
    "float64, float64[::1], float64[::1], float64[::1], float64[::1], int64[::1], "
    "float64[::1], float64[::1], int64[::1], float64[::1], float64[::1], "
    "int64[:, ::1], float64[:, ::1], int64[:, ::1], "
    "float64[:, ::1], float64[:, ::1], int64[:, ::1], float64[:, ::1], float64[::1], int64[::1]"
    ")"
)
def _run_plan(
    signal: np.ndarray,
    open_: np.ndarray,
    close: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    entry_fraction: float,
    exit_fraction: float,
    fee_rate: float,
    slip: float,
    min_notional: float,
    max_notional: float,
    trade_on_close: bool,
    tick: float,
    tick_scale: float,
    lot: float,
    lot_scale: float,
    volume: np.ndarray,
    volume_limit: float,
    price_impact: float,
    max_position_quantity: float,
    max_position_notional: float,
    cap_limits: bool,
    margin: bool,
    shorts: bool,
    cross: bool,
    multiplier: float,
    leverage: float,
    tier_max_notional: np.ndarray,
    tier_max_leverage: np.ndarray,
    maintenance_rate: np.ndarray,
    maintenance_amount: np.ndarray,
    maintenance_min_notional: np.ndarray,
    maintenance_max_notional: np.ndarray,
    liquidation_fee_rate: float,
    mark_open: np.ndarray,
    mark_high: np.ndarray,
    mark_low: np.ndarray,
    mark_close: np.ndarray,
    funding_row: np.ndarray,
    funding_rate: np.ndarray,
    funding_mark: np.ndarray,
    ts: np.ndarray,
    unit_value: np.ndarray,
    equity_at: np.ndarray,
    order_ints: np.ndarray,
    order_floats: np.ndarray,
    fill_ints: np.ndarray,
    fill_floats: np.ndarray,
    per_bar: np.ndarray,
    funding_ints: np.ndarray,
    funding_floats: np.ndarray,
    money: np.ndarray,
    counts: np.ndarray,
) -> None:
    """The loop of `simulate`, writing into the arrays it is given. `money` holds the balances as
    one array so the helpers below can book into it."""
    n = len(signal)
    payments = len(funding_row)

    def reducible(buy: bool) -> float:
        # Account.reducible: how much of an order on this side would reduce the position.
        held: float = money[_HELD]
        if buy:
            return -held if held < 0.0 else 0.0
        return held if held > 0.0 else 0.0

    def unrealized(mark: float) -> float:
        # Position.unrealized_pnl of the open position at `mark`.
        held: float = money[_HELD]
        return realized_pnl(held, money[_ENTRY_PRICE], mark, abs(held), multiplier)

    def buying_power(mark: float) -> float:
        # CashAccount: the cash. MarginAccount, one position: the wallet (cash plus the position
        # at its entry price), plus (cross) its unrealized profit at `mark`, the mark the caller
        # knows now, less the margin the position holds.
        total: float = money[_CASH]
        if not margin:
            return total
        if money[_HELD] != 0.0:
            total += position_value(money[_HELD], money[_ENTRY_PRICE], multiplier)
        if cross and money[_HELD] != 0.0:
            total += unrealized(mark)
        if money[_HELD] != 0.0:
            total -= money[_MARGIN]
        return total

    def cross_backing(mark: float) -> float:
        # MarginAccount.liquidation_price's backing of a cross position: the cross equity at the
        # mark known now less the position's unrealized profit there (no other position).
        wallet: float = money[_CASH] + position_value(money[_HELD], money[_ENTRY_PRICE], multiplier)
        profit = unrealized(mark)
        return (wallet + profit) - profit

    def on_lot(quantity: float) -> float:
        # Instrument.floor_quantity.
        return floor_on_grid(quantity, lot, lot_scale) if lot > 0.0 else quantity

    def affordable(price: float, budget: float) -> float:
        # Account.affordable: the largest quantity on the lot grid whose opening cost fits the
        # budget, in floats (the estimate can overshoot by an ulp: step down until it fits).
        if budget <= 0.0:
            return 0.0
        quantity = on_lot(quantity_for_budget(budget, price, multiplier, leverage, fee_rate))
        for _ in range(64):
            if quantity <= 0.0:
                return 0.0
            notional = fill_notional(quantity, price, multiplier)
            cost = opening_cost(notional, notional * fee_rate, leverage)
            if cost <= budget:
                return quantity
            if cost > budget * (1.0 + 1e-12):
                # Far off: shrink in proportion, then step by the grid.
                quantity = on_lot(quantity * (budget / cost))
            elif lot > 0.0:
                quantity = on_lot(quantity - lot)
            else:
                quantity = np.nextafter(quantity, 0.0)
        return 0.0

    def deny(k: int, reason: int, value: float) -> int:
        order_ints[_OUTCOME, k] = DENIED
        order_ints[_REASON, k] = reason
        order_floats[0, k] = value
        return -1

    def capped(k: int, i: int, buy: bool, available: float) -> int:
        # The risk engine's _capped: the order cut to a quantity order that takes the position to
        # its limit, then checked again as one (without capping); it opens from flat here.
        price = close[i]
        pending = money[_HELD] + 0
        room = on_lot(
            position_room(
                pending if buy else -pending,
                price,
                max_position_quantity,
                max_position_notional,
            )
        )
        if room <= 0.0:
            return deny(k, DENIED_NO_ROOM, pending)
        quantity = on_lot(room)  # the risk engine's form check floors a quantity to the lot
        notional = quantity * price * multiplier
        cost = opening_cost(quantity * price * multiplier, notional * fee_rate, leverage)
        if notional < min_notional or notional > max_notional:
            below = notional < min_notional
            reason = DENIED_BELOW_MIN_NOTIONAL if below else DENIED_ABOVE_MAX_NOTIONAL
            return deny(k, reason, notional)
        if cost > available:
            order_floats[4, k] = available
            return deny(k, DENIED_BALANCE, cost)
        projected = pending + (quantity if buy else -quantity)
        if margin and len(tier_max_notional):
            exposure = abs(projected) * price * multiplier
            tier = len(tier_max_notional) - 1
            for t in range(len(tier_max_notional)):
                if exposure < tier_max_notional[t]:
                    tier = t
                    break
            if leverage > tier_max_leverage[tier]:
                return deny(k, DENIED_LEVERAGE, exposure)
        breach = max_position_breach(projected, price, max_position_quantity, max_position_notional)
        if breach != WITHIN_LIMITS:
            return deny(k, DENIED_MAX_POSITION, projected)
        order_floats[3, k] = quantity  # accepted: the order is now for this quantity
        return k

    def submit(i: int, buy: bool, entry: bool) -> int:
        # The strategy's order and the risk engine's checks on it; the order index if accepted,
        # else -1. Nothing is reserved: an order opening exposure is never placed beside another
        # that claims buying power (a reversal's exit reduces).
        k: int = counts[0]
        counts[0] += 1
        order_ints[_ROW, k] = i
        order_ints[_SIDE, k] = 1 if buy else -1
        order_ints[_KIND, k] = ENTRY if entry else EXIT
        order_ints[_CLOSED, k] = i
        fraction = entry_fraction if entry else exit_fraction
        price = close[i]
        held = money[_HELD]
        reduces = reducible(buy)
        opening = 0.0
        available = 0.0
        if reduces > 0.0:
            quantity = fraction * reduces
        else:
            available = buying_power(mark_close[i]) - 0.0
            if available <= 0:
                order_ints[_OUTCOME, k] = DENIED
                order_ints[_REASON, k] = DENIED_NO_CASH
                order_floats[0, k] = available
                return -1
            budget = fraction * available
            quantity = quantity_for_budget(budget, price, multiplier, leverage, fee_rate)
            opening = quantity
        notional = quantity * price * multiplier
        if notional < min_notional or notional > max_notional:
            order_ints[_OUTCOME, k] = DENIED
            below = notional < min_notional
            order_ints[_REASON, k] = (
                DENIED_BELOW_MIN_NOTIONAL if below else DENIED_ABOVE_MAX_NOTIONAL
            )
            order_floats[0, k] = notional
            return -1
        if opening > 0.0 and margin and len(tier_max_notional):
            # rules.check_bracket_leverage on the position the order would make.
            projected = held + 0 + (quantity if buy else -quantity)
            exposure = abs(projected) * price * multiplier
            tier = len(tier_max_notional) - 1
            for t in range(len(tier_max_notional)):
                if exposure < tier_max_notional[t]:
                    tier = t
                    break
            if leverage > tier_max_leverage[tier]:
                order_ints[_OUTCOME, k] = DENIED
                order_ints[_REASON, k] = DENIED_LEVERAGE
                order_floats[0, k] = exposure
                return -1
        if opening > 0.0:
            # rules.check_max_position on the same projected position (none: NaN).
            projected = held + 0 + (quantity if buy else -quantity)
            breach = max_position_breach(
                projected, price, max_position_quantity, max_position_notional
            )
            if breach != WITHIN_LIMITS and cap_limits:
                return capped(k, i, buy, available)
            if breach != WITHIN_LIMITS:
                order_ints[_OUTCOME, k] = DENIED
                order_ints[_REASON, k] = DENIED_MAX_POSITION
                order_floats[0, k] = projected
                return -1
        return k

    def venue_mark(i: int) -> float:
        # The mark the venue knows while it fills on bar i: the bar's open, or with
        # trade_on_close (the fill comes after the bar) its close.
        mark: float = mark_close[i] if trade_on_close else mark_open[i]
        return mark

    def size_fraction(k: int, i: int, price: float) -> float:
        # The venue's _size_fraction: a share of the position when the order reduces it (all of
        # it exactly), else of the buying power; a spot sell never opens.
        buy = order_ints[_SIDE, k] > 0
        fraction = entry_fraction if order_ints[_KIND, k] == ENTRY else exit_fraction
        reduces = reducible(buy)
        if reduces > 0.0:
            return reduces if fraction == 1.0 else on_lot(fraction * reduces)
        if not margin and not buy:
            return 0.0
        return affordable(price, fraction * buying_power(venue_mark(i)))

    def book(
        k: int, i: int, buy: bool, quantity: float, price: float, fee: float, leaves: float
    ) -> None:
        # A fill of order k on bar i: booked into the balances (accounting.arithmetic, as the
        # accounts book it), recorded, and its order's filled quantity and notional set.
        booked = book_fill(
            money[_CASH],
            money[_HELD],
            money[_ENTRY_PRICE],
            money[_MARGIN],
            buy,
            quantity,
            price,
            fee,
            multiplier,
            leverage,
            margin,
        )
        money[_CASH] = booked[0]
        money[_HELD] = booked[1]
        money[_ENTRY_PRICE] = booked[2]
        money[_MARGIN] = booked[3]
        money[_FEES] = money[_FEES] + fee
        money[_LEVEL_CURRENT] = 0.0
        order_floats[1, k] = 0.0 + quantity
        order_floats[2, k] = 0.0 + quantity * price
        j = counts[1]
        counts[1] += 1
        fill_ints[0, j] = k
        fill_ints[1, j] = i
        fill_floats[0, j] = price
        fill_floats[1, j] = quantity
        fill_floats[2, j] = fee
        fill_floats[3, j] = leaves

    def fill(k: int, i: int, base: float) -> None:
        # The venue's fill of order k on bar i at `base` (before slippage), then the ledger.
        buy = order_ints[_SIDE, k] > 0
        fraction = entry_fraction if order_ints[_KIND, k] == ENTRY else exit_fraction
        order_ints[_CLOSED, k] = i
        # A capped order is for a quantity; a fraction order is sized now, at the fill price.
        sized_now = math.isnan(order_floats[3, k])
        remaining = size_fraction(k, i, base) if sized_now else order_floats[3, k]
        if remaining <= 0.0:
            order_ints[_OUTCOME, k] = CANCELED
            order_ints[_REASON, k] = CANCELED_SIZED_TO_ZERO
            return
        quantity = remaining
        if volume_limit > 0.0:
            # VolumeShareSlippage: the bar fills at most its share of the volume, less what it
            # filled already; a partial fill rests across bars, which the event path makes.
            already = money[_VOLUME_USED] if money[_VOLUME_ROW] == i else 0.0
            if remaining > volume_capacity(volume_limit, volume[i], already):
                counts[4] = STOPPED_VOLUME_CAPPED
                counts[5] = i
                return
            sign = 1.0 if buy else -1.0
            price = volume_share_price(base, sign, quantity, volume[i], volume_limit, price_impact)
        else:
            price = base * (1.0 + slip) if buy else base * (1.0 - slip)
        if tick > 0.0:
            price = nearest_on_grid(price, tick, tick_scale)
        if sized_now and buy and price != base:
            # Sized again at the price actually paid.
            remaining = size_fraction(k, i, price)
            quantity = min(remaining, quantity)
        reduces = reducible(buy)
        # The venue's _cap: what opens exposure must be affordable now (a spot fraction sized
        # just now is by construction); else the order fills what is, and the rest is canceled.
        opening = quantity - reduces if quantity > reduces else 0.0
        shortfall = False
        if opening > 0.0 and (margin or not sized_now):
            can = affordable(price, buying_power(venue_mark(i)))
            if can < opening:
                quantity = reduces + can
                shortfall = True
        if quantity <= 0.0:
            order_ints[_OUTCOME, k] = CANCELED
            order_ints[_REASON, k] = (
                CANCELED_CAPPED_AT_FILL if shortfall else CANCELED_SIZED_TO_ZERO
            )
            return
        leaves = remaining - quantity
        if lot > 0.0:
            leaves = nearest_on_grid(leaves, lot, lot_scale)  # Instrument.round_quantity
        if leaves <= remaining * 1e-12:
            leaves = 0.0
        if leaves != 0.0 and not shortfall:
            # The rest would rest at the venue for later bars: the event path makes that run.
            counts[4] = STOPPED_FILL_RESTS
            counts[5] = i
            return
        if leaves == 0.0 and sized_now and fraction == 1.0 and reduces > 0.0:
            # Closing takes exactly what is held.
            quantity = reduces
        fee = fill_notional(quantity, price, multiplier) * fee_rate
        book(k, i, buy, quantity, price, fee, leaves)
        if volume_limit > 0.0:
            already = money[_VOLUME_USED] if money[_VOLUME_ROW] == i else 0.0
            money[_VOLUME_ROW] = i
            money[_VOLUME_USED] = already + quantity
        order_ints[_OUTCOME, k] = FILLED if leaves == 0.0 else CANCELED
        order_ints[_REASON, k] = NO_REASON if leaves == 0.0 else CANCELED_CAPPED_AT_FILL

    def liquidation_level(i: int) -> float:
        # MarginAccount.liquidation_price of the position (the venue keeps it until a booking or
        # a funding payment moves it), taken on bar i, where the venue knows the mark's open.
        if money[_LEVEL_CURRENT] == 0.0:
            money[_LEVEL] = bracket_liquidation_price(
                cross_backing(mark_open[i]) if cross else money[_MARGIN],
                money[_HELD] * multiplier,
                money[_ENTRY_PRICE],
                maintenance_rate,
                maintenance_amount,
                maintenance_min_notional,
                maintenance_max_notional,
            )
            money[_LEVEL_CURRENT] = 1.0
        level: float = money[_LEVEL]
        return level

    def liquidate(i: int, mark: float) -> None:
        # The venue's _liquidate of the position: a closing order of its own, filled at the mark
        # (or the bankruptcy price past it), the fee out of the margin left (isolated: the
        # position's; cross: the account's, with the venue's mark the bar's open).
        held: float = money[_HELD]
        long = held > 0.0
        entry: float = money[_ENTRY_PRICE]
        backing: float = cross_backing(mark_open[i]) if cross else money[_MARGIN]
        quantity = abs(held)
        bankrupt = bankruptcy_price(entry, backing, quantity * multiplier, long)
        price = liquidation_fill_price(mark, bankrupt, long)
        if cross:
            left = (money[_CASH] + position_value(held, entry, multiplier)) + realized_pnl(
                held, entry, price, quantity, multiplier
            )
        else:
            left = backing + realized_pnl(held, entry, price, quantity, multiplier)
        fee = liquidation_fee(liquidation_fee_rate, held, multiplier, price, left)
        k = counts[0]
        counts[0] += 1
        order_ints[_ROW, k] = i
        order_ints[_SIDE, k] = -1 if long else 1
        order_ints[_KIND, k] = LIQUIDATION
        order_ints[_CLOSED, k] = i
        order_ints[_OUTCOME, k] = FILLED
        book(k, i, not long, quantity, price, fee, 0.0)
        counts[6] += 1

    def reached(i: int, level: float, whole: bool) -> float:
        # The venue's watch: orders.touch on the bar's mark path, from its open, up to the open
        # only or over the whole bar; the mark where the liquidation price is reached, else NaN.
        return reach_price(
            mark_open[i],
            mark_high[i],
            mark_low[i],
            mark_close[i],
            level,
            money[_HELD] > 0.0,
            whole,
        )

    def pay_funding(f: int) -> None:
        # The venue's on_funding, booked by every account: rate * quantity * size * mark.
        held = money[_HELD]
        if held == 0.0:
            return
        amount = funding_rate[f] * held * multiplier * funding_mark[f]
        money[_CASH] = money[_CASH] - amount
        money[_FUNDING] = money[_FUNDING] + amount
        if not cross:
            money[_MARGIN] = money[_MARGIN] - amount  # an isolated position's margin pays it
        money[_LEVEL_CURRENT] = 0.0
        p = counts[2]
        counts[2] += 1
        funding_ints[0, p] = f
        funding_ints[1, p] = counts[1]
        funding_floats[0, p] = held
        funding_floats[1, p] = amount

    cash_at, position_at = per_bar[0], per_bar[1]
    basis_at, funding_at = (per_bar[2], per_bar[3]) if margin else (per_bar[0], per_bar[1])
    pending_first = -1  # orders resting at the venue until the next bar, in their order
    pending_second = -1
    next_payment = 0
    # The balances as locals between bookings: read from `money` in the loop, they would be loaded
    # again on every bar (the stores into per_bar might alias them).
    cash = money[_CASH]
    position = money[_HELD]
    basis = 0.0
    funded = 0.0
    # Marking to market after each bar (when asked): the drawdown state `mark_bar` carries.
    marking = len(equity_at) == n
    peak = 0.0
    deepest = np.inf
    under_since = -1
    since = 0
    longest = 0
    exposed = 0
    for i in range(n):
        s = signal[i]
        # The prices an order reads at a later bar (its submission's close, its fill's open),
        # fetched ahead: read only at the few bars with an order, each read would otherwise wait
        # on memory (most of the loop's time on a year of minutes).
        prefetch(open_, i + _AHEAD)
        prefetch(close, i + _AHEAD)
        if (
            pending_first >= 0
            or s != 0
            or (
                margin
                and (
                    position != 0.0 or (next_payment < payments and funding_row[next_payment] == i)
                )
            )
        ):
            while next_payment < payments and funding_row[next_payment] == i:
                pay_funding(next_payment)
                next_payment += 1
            # The venue sees each bar before the strategy: orders from an earlier bar fill at this
            # bar's open, and the strategy then acts on the position those fills left. A margin
            # position is watched for liquidation over the bar's mark path: the venue looks at the
            # open before an order fills there, and after the fills at the rest of the path if a
            # position was open when the bar began; on a bar without orders it looks only where
            # the bar's extreme mark reaches the liquidation price.
            if pending_first >= 0:
                if pending_second >= 0 and high[i] != low[i]:
                    counts[3] += 1  # two orders at the open: the venue's path decided their order
                watched = margin and money[_HELD] != 0.0
                mark = reached(i, liquidation_level(i), False) if watched else math.nan
                if not math.isnan(mark):
                    liquidate(i, mark)
                    for k in (pending_first, pending_second):
                        if k >= 0:
                            order_ints[_OUTCOME, k] = CANCELED
                            order_ints[_REASON, k] = CANCELED_LIQUIDATED
                            order_ints[_CLOSED, k] = i
                else:
                    fill(pending_first, i, open_[i])
                    if counts[4] != RAN_TO_THE_END:
                        return
                    if pending_second >= 0:
                        fill(pending_second, i, open_[i])
                        if counts[4] != RAN_TO_THE_END:
                            return
                    if watched and money[_HELD] != 0.0:
                        mark = reached(i, liquidation_level(i), True)
                        if not math.isnan(mark):
                            liquidate(i, mark)
                pending_first = -1
                pending_second = -1
            elif margin and money[_HELD] != 0.0:
                level = liquidation_level(i)
                extreme = mark_low[i] if money[_HELD] > 0.0 else mark_high[i]
                if extreme <= level if money[_HELD] > 0.0 else extreme >= level:
                    mark = reached(i, level, True)
                    if not math.isnan(mark):
                        liquidate(i, mark)
            held = money[_HELD]
            first = -1
            second = -1
            if s > 0:
                if held == 0.0:
                    first = submit(i, True, True)
                elif held < 0.0:
                    first = submit(i, True, False)
                    if exit_fraction == 1.0:
                        second = submit(i, True, True)
            elif s < 0:
                if held > 0.0:
                    first = submit(i, False, False)
                    if shorts and exit_fraction == 1.0:
                        second = submit(i, False, True)
                elif held == 0.0 and shorts:
                    first = submit(i, False, True)
            if first < 0:
                first, second = second, -1
            if first >= 0:
                if trade_on_close:
                    fill(first, i, close[i])
                    if counts[4] != RAN_TO_THE_END:
                        return
                    if second >= 0:
                        fill(second, i, close[i])
                        if counts[4] != RAN_TO_THE_END:
                            return
                else:
                    pending_first = first
                    pending_second = second
            cash = money[_CASH]
            position = money[_HELD]
            if margin:
                basis = position_value(position, money[_ENTRY_PRICE], multiplier)
                funded = money[_FUNDING]
        cash_at[i] = cash
        position_at[i] = position
        if margin:
            basis_at[i] = basis
            funding_at[i] = funded
        if marking:
            _, equity, _, peak, deepest, under_since, since, longest, exposed = mark_bar(
                i,
                ts[i],
                ts[i - 1] if i else ts[0],
                cash,
                position,
                unit_value[i],
                peak,
                deepest,
                under_since,
                since,
                longest,
                exposed,
            )
            equity_at[i] = equity
    if marking:
        money[_DEEPEST] = deepest
        money[_PEAK] = peak
        counts[7] = longest_under_water(ts[n - 1] if n else 0, under_since, since, longest)
        counts[8] = exposed
    for k in (pending_first, pending_second):
        if k >= 0:
            order_ints[_OUTCOME, k] = CANCELED
            order_ints[_REASON, k] = CANCELED_END_OF_DATA
            order_ints[_CLOSED, k] = n - 1
