"""Risk's position limits: a buy that would take the position past a configured cap is denied with the
reason; open buy orders count toward the cap; sells are never held back by it."""

from __future__ import annotations

from tests.engine_support import run_script

FLAT = [(100.0, 101.0, 99.0, 100.0, 1_000.0)] * 6


def statuses(result) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return list(
        zip(result.orders["status"].to_list(), result.orders["reason"].to_list(), strict=True)
    )


def test_buy_past_max_position_quantity_is_denied_with_reason() -> None:
    result = run_script(
        FLAT,
        {0: [lambda s: s.buy(3.0)], 1: [lambda s: s.buy(2.5)]},
        cash=10_000.0,
        max_position_quantity=5.0,
    )
    assert statuses(result)[0] == ("filled", "")
    status, reason = statuses(result)[1]
    assert status == "denied"
    assert reason == "position would be 5.5, above max 5.0"


def test_open_buy_orders_count_toward_the_cap() -> None:
    # Both orders are placed on the same bar: the first has not filled when the second is checked.
    result = run_script(
        FLAT,
        {0: [lambda s: s.buy(3.0), lambda s: s.buy(3.0)]},
        cash=10_000.0,
        max_position_quantity=5.0,
    )
    assert [s for s, _ in statuses(result)] == ["filled", "denied"]


def test_max_position_notional_uses_the_expected_price() -> None:
    result = run_script(
        FLAT,
        {0: [lambda s: s.buy(2.0), lambda s: s.buy(1.0, limit=95.0)]},
        cash=10_000.0,
        max_position_notional=250.0,
    )
    # 2 at the last close (100) is 200; one more at its limit 95 makes 3 * 95 = 285 > 250.
    assert statuses(result)[0][0] == "filled"
    assert statuses(result)[1] == ("denied", "position notional would be 285, above max 250.0")


def test_sells_are_not_limited_by_the_position_cap() -> None:
    result = run_script(
        FLAT,
        {0: [lambda s: s.buy(4.0)], 2: [lambda s: s.sell(4.0)]},
        cash=10_000.0,
        max_position_quantity=4.0,
    )
    assert [s for s, _ in statuses(result)] == ["filled", "filled"]
