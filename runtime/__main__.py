"""Lets `python -m runtime` run the command-line interface."""

import sys

from runtime.cli.main import main

sys.exit(main())
