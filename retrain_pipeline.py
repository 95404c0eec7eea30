#!/usr/bin/env python3
"""Gated retraining: ``python retrain_pipeline.py`` (cron runs this), or a subcommand (--help)."""

import sys

from modelops.trainer.cli import main

if __name__ == "__main__":
    sys.exit(main())
