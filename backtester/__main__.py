"""`python -m backtester`: the command-line entry point."""

import sys

from backtester.cli import main

if __name__ == "__main__":
    sys.exit(main())
