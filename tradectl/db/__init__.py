"""Database: models (tables) and session (engine, transactions, locks, migrations)."""
