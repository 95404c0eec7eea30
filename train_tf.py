#!/usr/bin/env python3
"""Train and evaluate a candidate model into runs/ without publishing it (the gate publishes)."""

import sys

from modelops.cli import main

if __name__ == "__main__":
    sys.exit(main(default_command="train"))
