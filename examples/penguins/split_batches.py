"""Split the Palmer penguins table (shipped by the ``palmerpenguins`` package) into weekly batches.

    python examples/penguins/split_batches.py --out data/incoming [--weeks 4] [--seed 7]

Writes ``week-01.csv`` ... in shuffled order, every column as the package ships it (``year`` too:
the config does not declare it, so ingest ignores it), blanks as ``NA``. Each file is written
under a ``.partial`` name and renamed, so a running pipeline never judges half a batch.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
from importlib import resources
from pathlib import Path


def penguin_rows() -> tuple[list[str], list[list[str]]]:
    """The header and the 344 rows of the package's CSV: nothing is fetched at run time."""
    text = (resources.files("palmerpenguins") / "data" / "penguins.csv").read_text(encoding="utf-8")
    header, *rows = list(csv.reader(text.splitlines()))
    return header, rows


def write_weeks(out: Path, weeks: int, seed: int) -> list[Path]:
    header, rows = penguin_rows()
    random.Random(seed).shuffle(rows)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for week in range(weeks):
        target = out / f"week-{week + 1:02d}.csv"
        partial = target.with_name(target.name + ".partial")
        with partial.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(header)
            writer.writerows(rows[week::weeks])
        os.replace(partial, target)
        written.append(target)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("data/incoming"), help="where the batches go")
    parser.add_argument("--weeks", type=int, default=4, help="how many batches (default 4)")
    parser.add_argument("--seed", type=int, default=7, help="the shuffle's seed (default 7)")
    args = parser.parse_args()
    for path in write_weeks(args.out, args.weeks, args.seed):
        print(path)


if __name__ == "__main__":
    main()
