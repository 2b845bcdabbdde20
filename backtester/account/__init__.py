"""The client-side ledger: cash, positions, fees, P&L and the equity curve, booked from fill events."""
