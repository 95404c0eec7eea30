"""What a model learns from a date or a timestamp, derived inside the exported graph.

Serving takes a ``date`` as ISO 8601 text (``"2012-07-01"``) and a ``datetime`` as
``"2012-07-01T13:45:00"`` (the form and ``/predict`` normalise what users type to that spelling:
``modelops.core.moments``), so a stock TF Serving request carries the text and the SavedModel
turns it into numbers: the year (normalised with the training rows' mean and variance) and, as
cyclical (sin, cos) pairs so December sits next to January, the month, the day of the year and the
day of the week, and for a timestamp the hour of the day. A missing optional value ("") takes the
training rows' median moment; the encoder adds the 0/1 "was missing" input beside it.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

CYCLES = {"date": ("month", "day of year", "day of week"),
          "datetime": ("month", "day of year", "day of week", "hour")}


def width(kind: str) -> int:
    """Encoded columns of one temporal feature: the year plus a (sin, cos) pair per cycle."""
    return 1 + 2 * len(CYCLES[kind])


def fit(column: np.ndarray) -> tuple[float, float, str]:
    """The training rows' year mean and variance and the median moment (for a missing value)."""
    present = sorted(str(v) for v in column.tolist() if str(v))
    if not present:
        return 2000.0, 1.0, "2000-01-01T00:00:00"
    years = np.asarray([int(v[:4]) for v in present], dtype=np.float64)
    variance = float(years.var()) if len(years) > 1 and years.var() > 0 else 1.0
    return float(years.mean()), variance, present[len(present) // 2]


def _days_from_civil(y, m, d):
    """Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm), in int64 ops."""
    y = y - tf.cast(m <= 2, tf.int64)
    era = tf.math.floordiv(y, 400)
    yoe = y - era * 400
    mp = tf.where(m > 2, m - 3, m + 9)
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def derive(text, kind: str, fill: str, year_mean: float, year_variance: float):
    """ISO 8601 text ``[None]`` -> float32 ``[None, width(kind)]`` (see the module docstring)."""
    text = tf.reshape(text, [-1])
    text = tf.where(tf.equal(text, ""), tf.constant(fill[: 10 if kind == "date" else 19]), text)

    def part(start: int, length: int):
        return tf.strings.to_number(tf.strings.substr(text, start, length), out_type=tf.int64)

    year, month, day = part(0, 4), part(5, 2), part(8, 2)
    days = _days_from_civil(year, month, day)
    day_of_year = days - _days_from_civil(year, tf.ones_like(month), tf.ones_like(day))
    cycles = [(tf.cast(month - 1, tf.float32), 12.0), (tf.cast(day_of_year, tf.float32), 365.25),
              (tf.cast(tf.math.floormod(days + 4, 7), tf.float32), 7.0)]  # 1970-01-01 was a Thursday
    if kind == "datetime":
        hour = tf.cast(part(11, 2), tf.float32) + tf.cast(part(14, 2), tf.float32) / 60.0
        cycles.append((hour, 24.0))
    columns = [(tf.cast(year, tf.float32) - year_mean) / math.sqrt(year_variance)]
    for value, period in cycles:
        angle = value * (2.0 * math.pi / period)
        columns += [tf.sin(angle), tf.cos(angle)]
    return tf.stack(columns, axis=-1)
