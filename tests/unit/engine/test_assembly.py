from __future__ import annotations

import pytest

from backtester.config import (
    ConfigError,
    FixedBpsSlippageSpec,
    FixedFeeSpec,
    MakerTakerFeeSpec,
    NoSlippageSpec,
    StrategySpec,
    VolumeShareSlippageSpec,
)
from backtester.engine.assembly import fee_model, slippage_model, strategy_class, strategy_params
from backtester.execution.fees import FixedRateFee, MakerTakerFee
from backtester.execution.slippage import FixedBpsSlippage, NoSlippage, VolumeShareSlippage
from backtester.strategies import SmaCross, SmaExtended, SmaExtendedParams


class Patient(SmaCross):
    """A user strategy, importable by its module path."""


NOT_A_STRATEGY = object()


def test_specs_become_the_matching_models() -> None:
    assert fee_model(FixedFeeSpec(rate=0.001)) == FixedRateFee(rate=0.001)
    assert fee_model(MakerTakerFeeSpec(maker=0.1, taker=0.2)) == MakerTakerFee(0.1, 0.2)
    assert slippage_model(NoSlippageSpec()) == NoSlippage()
    assert slippage_model(FixedBpsSlippageSpec(bps=2.0)) == FixedBpsSlippage(bps=2.0)
    assert slippage_model(VolumeShareSlippageSpec(0.5, 0.2)) == VolumeShareSlippage(0.5, 0.2)


def test_builtin_and_import_path_strategies_resolve() -> None:
    assert strategy_class("SmaExtended") is SmaExtended
    assert strategy_class(f"{__name__}:Patient") is Patient


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "Sma",
            "strategy.name: unknown strategy 'Sma' (built-in: HourlyTrendCross, SmaCross, SmaExtended, SmcOrderBlocks; ",
        ),
        (f"{__name__}:Missing", "has no 'Missing'"),
        (f"{__name__}:NOT_A_STRATEGY", "is not a Strategy subclass"),
    ],
)
def test_unusable_strategy_names_are_config_errors(name: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        strategy_class(name)
    assert message in str(caught.value)


def test_params_are_typed_with_defaults() -> None:
    params = strategy_params(SmaExtended, StrategySpec("SmaExtended", {"stop_loss_pct": 1}))
    assert params == SmaExtendedParams(stop_loss_pct=1.0)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"fast": "ten"}, "strategy.params.fast: expected int, got str"),
        ({"fast": 40}, "strategy.params: need 1 <= fast < slow, got fast=40 slow=30"),
        ({"slowest": 3}, "strategy.params.slowest: SmaCross does not declare this parameter"),
    ],
)
def test_bad_params_are_config_errors_by_key(params: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        strategy_params(SmaCross, StrategySpec("SmaCross", params))
    assert str(caught.value).startswith(message)
