"""`python -m aggregator`: the same command line as the installed `aggregator`."""

from aggregator.cli.console import main

main()
