"""tradectl: bracket positions on Alpaca, a risk watch loop and an emergency stop, in one CLI."""

__version__ = "0.1.0"
