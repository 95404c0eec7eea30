"""``python -m modelops.scheduler``: the old name of ``python -m modelops.trainer.scheduler``."""

from modelops.trainer.scheduler import main

if __name__ == "__main__":
    raise SystemExit(main())
