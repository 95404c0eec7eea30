#!/usr/bin/env python3
"""Train and evaluate a candidate model into runs/ without publishing it (the gate publishes)."""

import sys

from modelops.trainer.cli import train_main

if __name__ == "__main__":
    sys.exit(train_main())
