"""open: the pre-trade reads, the quote, the bracket placed under the trading gate."""
