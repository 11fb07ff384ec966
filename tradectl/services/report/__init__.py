"""report, log and status: what happened, read from the database and Alpaca."""
