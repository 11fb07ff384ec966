"""watch: the tick, Alpaca's orders onto positions, protection kept working."""
