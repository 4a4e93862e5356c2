"""Project upkeep commands (lock checks) that run before the virtual environment exists: stdlib only."""
