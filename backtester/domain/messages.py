"""Every message on the bus: one tagged union of frozen msgspec Structs.

Commands are imperative (`SubmitOrder`), events past tense (`OrderFilled`). Each carries `ts_event` (when it
happened in the simulation) and `ts_init` (when the engine created it), both int64 UTC nanoseconds. Fields
are only ever added with defaults, so encoded messages stay decodable.
"""

from __future__ import annotations

import msgspec

from backtester.domain.enums import Liquidity, Side, TimeInForce


class Message(msgspec.Struct, frozen=True, gc=False, tag_field="kind", tag=True):
    """Base of the union; the tag is the class name."""


class Bar(Message, frozen=True, gc=False):
    """One OHLCV bar. `ts_event` is the bar's open time; `ts_init` the time it becomes known, its
    close (open + its stream's bar interval), when the engine delivers it (adr/0020); `index` its
    row in its own stream."""

    instrument: str
    index: int
    ts_event: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    ts_init: int = 0


class FundingRate(Message, frozen=True, gc=False):
    """A perpetual's funding at `ts_event`: a position pays `rate * quantity * contract size *
    mark_price` (a positive rate: longs pay shorts). `mark_price` is the mark known at that time."""

    instrument: str
    rate: float
    mark_price: float
    ts_event: int
    ts_init: int


class ContractExpired(Message, frozen=True, gc=False):
    """A future reached its expiry: open positions settle at `settlement_price` (the last mark)."""

    instrument: str
    settlement_price: float
    ts_event: int
    ts_init: int


# --- commands ---------------------------------------------------------------------------------


class SubmitOrder(Message, frozen=True, gc=False):
    """Ask for an order. Exactly one of `quantity` and `fraction` is set.

    `fraction` sizes the order when it fills: for a buy, that share of the cash available then (fees
    included); for a sell, that share of the position held then. `ref_price` is the last price the
    strategy saw, which Risk uses to estimate notional before the fill price is known.
    `order_type` names a registered order type (`backtester.orders`; `OrderType` lists the built-in
    ones).

    Flags: `post_only` (a limit that would take liquidity is canceled instead), `reduce_only`
    (never opens or flips a position: capped to what is held). Trailing stops: `trailing_offset`
    in `trailing_offset_type` units ("price", "percent" or "ticks"), `activation_price`, and for a
    trailing stop-limit `limit_offset`. Linked orders: `parent_id` (live only once that order
    fills, sized by its fills), `oco_id` (the group whose other legs are canceled when one fills),
    and for a leg released by a fill `stop_offset_pct` / `limit_offset_pct` (its prices relative to
    that fill's price, in percent, signed).
    """

    order_id: int
    instrument: str
    side: Side
    order_type: str
    ts_init: int
    ref_price: float
    quantity: float | None = None
    fraction: float | None = None
    limit_price: float | None = None
    stop_price: float | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    tag: str = ""
    expire_time: int | None = None
    post_only: bool = False
    reduce_only: bool = False
    trailing_offset: float | None = None
    trailing_offset_type: str = "price"
    activation_price: float | None = None
    limit_offset: float | None = None
    parent_id: int | None = None
    oco_id: int | None = None
    stop_offset_pct: float | None = None
    limit_offset_pct: float | None = None


class SubmitOrderList(Message, frozen=True, gc=False):
    """Linked orders as one command: a bracket (an entry and its exits, `parent_id` set to the
    entry's id and one `oco_id`), or a one-cancels-other group. Risk accepts all of them or denies
    all of them."""

    orders: tuple[SubmitOrder, ...]
    ts_init: int


class ModifyOrder(Message, frozen=True, gc=False):
    """Amend an open order: its total `quantity`, `limit_price` or `stop_price` (None: unchanged)."""

    order_id: int
    ts_init: int
    quantity: float | None = None
    limit_price: float | None = None
    stop_price: float | None = None


class CancelOrder(Message, frozen=True, gc=False):
    order_id: int
    ts_init: int


# --- events -----------------------------------------------------------------------------------


class OrderAccepted(Message, frozen=True, gc=False):
    """Risk passed the order; `order` is as accepted (quantity and prices already on the grids)."""

    order: SubmitOrder
    ts_event: int
    ts_init: int


class OrderDenied(Message, frozen=True, gc=False):
    """`code` names the rule that denied it (for counting), `reason` says why in full."""

    order_id: int
    reason: str
    ts_event: int
    ts_init: int
    code: str = ""


class OrderModified(Message, frozen=True, gc=False):
    """An amendment passed: `order` is the order as it now stands."""

    order: SubmitOrder
    ts_event: int
    ts_init: int


class OrderModifyRejected(Message, frozen=True, gc=False):
    order_id: int
    reason: str
    ts_event: int
    ts_init: int


class OrderReleased(Message, frozen=True, gc=False):
    """A linked order went live when its parent filled: `order` with its prices set and
    `quantity` what it may fill now."""

    order: SubmitOrder
    ts_event: int
    ts_init: int


class OrderFilled(Message, frozen=True, gc=False):
    """A fill. Orders the venue issues itself (liquidations, settlements) have negative ids."""

    order_id: int
    instrument: str
    side: Side
    price: float
    quantity: float
    fee: float
    liquidity: Liquidity
    leaves_quantity: float
    ts_event: int
    ts_init: int


class OrderCanceled(Message, frozen=True, gc=False):
    order_id: int
    reason: str
    ts_event: int
    ts_init: int


class OrderExpired(Message, frozen=True, gc=False):
    """An order's time in force ran out: an IOC or FOK order's unfilled remainder after its only
    eligible bar, a GTD or DAY order at its expiry."""

    order_id: int
    ts_event: int
    ts_init: int
    reason: str = "time in force"


class OrderCancelRejected(Message, frozen=True, gc=False):
    order_id: int
    reason: str
    ts_event: int
    ts_init: int


class PositionChanged(Message, frozen=True, gc=False):
    instrument: str
    quantity: float
    avg_price: float
    realized_pnl: float
    ts_event: int
    ts_init: int


class AccountState(Message, frozen=True, gc=False):
    """Cash of one quote currency after a booking; `fill` is the fill that caused it, if any (none
    for a funding payment)."""

    currency: str
    cash: float
    fees_paid: float
    realized_pnl: float
    ts_event: int
    ts_init: int
    fill: OrderFilled | None = None
    funding_paid: float = 0.0


class FundingPaid(Message, frozen=True, gc=False):
    """The venue booked a funding payment on a position: `amount` > 0 was paid, < 0 received."""

    instrument: str
    rate: float
    mark_price: float
    quantity: float
    amount: float
    ts_event: int
    ts_init: int


class PositionLiquidated(Message, frozen=True, gc=False):
    """The venue closes a position whose margin fell to its maintenance margin: `order` is the
    closing order it issued (its fill follows), at the mark price where the liquidation price was
    reached (`liquidation_price`, or beyond it when the mark gapped past)."""

    order: SubmitOrder
    liquidation_price: float
    mark_price: float
    ts_event: int
    ts_init: int


class PositionSettled(Message, frozen=True, gc=False):
    """An expired future's position closes at the settlement price: `order` is the venue's closing
    order (its fill follows)."""

    order: SubmitOrder
    settlement_price: float
    ts_event: int
    ts_init: int


TERMINAL_EVENTS = (OrderDenied, OrderCanceled, OrderExpired)
