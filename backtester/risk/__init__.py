"""Pre-trade risk: every SubmitOrder is answered with OrderAccepted or OrderDenied(reason)."""
