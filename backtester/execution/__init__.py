"""The simulated venue: resting orders, bar fill rules, fee and slippage models."""
