"""The domain core: no I/O and no adapter. Positions and their lifecycle, the rules that decide
what is allowed, money and prices, the market calendar. Time and prices are passed in."""
