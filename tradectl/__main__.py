"""`python -m tradectl` runs the CLI."""

from tradectl.cli import entry

entry()
