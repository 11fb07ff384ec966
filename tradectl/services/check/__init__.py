"""check-alpaca: can trading work here."""
