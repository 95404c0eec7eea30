"""How far apart are two versions of the model? ``retrain_pipeline.py compare A B``.

The same rows go, one per request as the frontend sends them, to
``/v1/models/<m>/versions/<A>:predict`` and ``.../<B>:predict`` on TF Serving (``TF_HOST``),
alternating A and B so both see the same load. The rows and answers follow the declared schema
(``modelops.core.predictions``: the demo's ``p >= 0.5``, else the most probable class). The result:
rows compared, class agreement, mean and max absolute difference of the class probabilities, each
version's accuracy on labelled rows, its p50/p99 latency, and the rows where the two disagree
most, and where the two versions' recorded lineage differs (code, libraries, config, data, seed,
parent: ``modelops.core.lineage``) and the features whose share of the importance moved most
(``compare_reasons``). ``--max-diff`` / ``--min-agreement`` bounds turn it into a gate for
scripts (exit 3).

TF Serving keeps only the latest version loaded unless it runs from a model config file that
lists more, so the version before the served one is usually not loaded: the command says what
is loaded instead of guessing. When serving runs from the trainer's config file (``rollout.mode``
shadow or canary), ``--load`` lists a published version there for the comparison and drops it
again afterwards. A row is reported by its 1-based position among the compared
rows (line ``row + 1`` of an input file, after the header).

After each verified promotion the trainer stores the comparison of the new version with the one
before it in the new version's ``metrics.json`` (``comparison``), so the model page shows it
without TensorFlow or numpy. By then serving has unloaded the older version, so the trainer
scores both in-process through the SavedModel signature TF Serving runs (verification has just
shown serving answers like it); that stored comparison has no latency figures.
"""

from __future__ import annotations

import csv
import io
import math
import time
from dataclasses import dataclass
from pathlib import Path

from modelops.core import lineage, predictions
from modelops.core.config import Config
from modelops.core.errors import DataError, ModelNotLoaded, ServingHTTPError, UsageError
from modelops.core.predictions import Prediction
from modelops.core.schema import DEMO_SCHEMA, Schema
from modelops.core.store import ModelStore
from modelops.core.tfserving_client import ServingClient
from modelops.core.timestamps import now_iso
from modelops.trainer import compare_reasons, rollout_control

DEFAULT_ROWS = 500
DEFAULT_SHOW = 5
MAX_PROBLEMS = 5


@dataclass(frozen=True)
class Rows:
    """The rows both versions answer, as TF Serving instances of ``schema`` (packed: ``[x1, x2]``;
    named: ``{feature: value}``); ``labels`` (class indexes) is None when the input has no label column."""

    x: list
    labels: list[float] | None  # class indexes, or a number label's values
    source: str
    schema: Schema = DEMO_SCHEMA


# --- the rows ---


def held_out_rows(config: Config, limit: int | None = DEFAULT_ROWS) -> Rows:
    """The first ``limit`` (None: all) eval rows of the current dataset, split as the pipeline splits it."""
    from modelops.trainer.data import holdout, tables, windowed

    schema = config.schema
    split = holdout.split(windowed.load_dataset(config), config.data.eval_percent, holdout.split_key(config))
    y = split.y_eval[:limit].tolist()
    if not y:
        raise UsageError("the current dataset has no held-out rows yet; give rows with --input FILE.csv")
    if schema.packed:
        x = split.x_eval[:limit].tolist()
    else:
        text = None if split.text_eval is None else split.text_eval[:limit]
        x = [schema.instance_for_serving(row) for row in tables.typed_rows(schema, split.x_eval[:limit], text)]
    return Rows(x, [int(v) for v in y], f"{len(x)} held-out rows of the current dataset", schema)


def read_csv(path: Path, max_abs: float, max_rows: int, schema: Schema = DEMO_SCHEMA) -> Rows:
    """Rows of a CSV with the schema's feature columns and optionally its label column, read by the
    header rule and cell parser ingest uses (``trainer/data/csv_rows.py``); UsageError says what is wrong."""
    from modelops.trainer.data.csv_rows import Header, empty_file, expected_columns

    try:
        text = Path(path).read_bytes().decode("utf-8-sig")
        table = [r for r in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in r)]
    except OSError as exc:
        raise UsageError(f"cannot read --input {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(f"--input {path} is not a CSV text file ({exc}); expected columns "
                         f"{expected_columns(schema, label_required=False)}") from None
    try:
        if not table:
            raise empty_file(schema, label_required=False)
        header = Header(table[0], schema, max_abs, label_required=False)
    except DataError as exc:
        raise UsageError(f"--input {path}: {exc}") from None
    if not 1 <= len(table) - 1 <= max_rows:
        raise UsageError(f"--input {path} has {len(table) - 1} data rows; between 1 and {max_rows} are needed")
    x: list = []
    labels: list[float] = []
    problems: list[str] = []
    for line, row in enumerate(table[1:], start=2):
        try:
            values, index = header.read(row)
        except ValueError as exc:
            problems.append(f"line {line}: {exc}")
            continue
        x.append(schema.instance_for_serving(dict(zip(schema.names, values, strict=True))))
        if index is not None:
            labels.append(index)
    if problems:
        more = f" (and {len(problems) - MAX_PROBLEMS} more)" if len(problems) > MAX_PROBLEMS else ""
        raise UsageError(f"--input {path}: " + "; ".join(problems[:MAX_PROBLEMS]) + more)
    return Rows(x, labels if header.label is not None else None, f"{len(x)} rows of {path}", schema)


# --- the versions ---


def resolve(client: ServingClient, store: ModelStore, specs: tuple[str, str], load: bool = False,
            config_file: bool = False) -> tuple[tuple[int, int], list[int]]:
    """Version numbers for ``served`` / ``previous`` / ``N``, and those serving has not loaded.

    A version that is not loaded is a UsageError unless ``load`` is asked, serving runs from the
    trainer's model config file (``config_file``) and the version is published: the caller loads it.
    """
    try:
        entries = client.status()
    except ServingHTTPError as exc:
        if exc.status != 404:
            raise
        entries = []
    loaded = sorted(int(e["version"]) for e in entries
                    if isinstance(e, dict) and e.get("state") == "AVAILABLE" and str(e.get("version")).isdigit())
    if not loaded:
        raise ModelNotLoaded(f"TF Serving at {client.shown_url} has no version of {client.model_name!r} loaded")
    published = sorted(set(store.versions()) | set(loaded))
    versions = []
    for spec in specs:
        if spec == "served":
            versions.append(loaded[-1])
        elif spec == "previous":
            older = [v for v in published if v < loaded[-1]]
            if not older:
                raise UsageError(f"there is no version before the served v{loaded[-1]} to compare with "
                                 f"(published: {_names(published)})")
            versions.append(older[-1])
        else:
            versions.append(int(spec))
    missing = [v for v in dict.fromkeys(versions) if v not in loaded]
    for v in missing:
        if not (load and config_file and v in published):
            raise UsageError(_not_loaded(client, v, loaded, published, load, config_file))
    return (versions[0], versions[1]), missing


def _not_loaded(client: ServingClient, version: int, loaded: list[int], published: list[int], load: bool,
                config_file: bool) -> str:
    known = "" if version in published else f"; published versions: {_names(published)}"
    where = f"loaded at {client.shown_url}: {_names(loaded)}{known}"
    if load and not config_file:
        return (f"cannot load v{version}: --load needs TF Serving run from the model config file the trainer "
                f"writes, as in rollout.mode shadow or canary (docs/rollout.md), and rollout.mode is direct; {where}")
    if load:
        return f"cannot load v{version}: it is not published; {where}"
    return (f"v{version} is not loaded in TF Serving at {client.shown_url} (loaded: {_names(loaded)}{known}); "
            "TF Serving keeps only the latest version loaded unless a model config file lists more: "
            "add --load to load it for this comparison")


def _names(versions: list[int]) -> str:
    return ", ".join(f"v{v}" for v in versions) or "none"


# --- asking and measuring ---


def ask_serving(client: ServingClient, versions: tuple[int, int], rows: Rows) -> list[tuple[list, list[float]]]:
    """``(predictions, latencies in seconds)`` per version: one row per request, A and B in turn."""
    answers: list[tuple[list[Prediction], list[float]]] = [([], []), ([], [])]
    for row in rows.x:
        for (found, seconds), version in zip(answers, versions, strict=True):
            started = time.perf_counter()
            prediction = client.predict([row], version)
            seconds.append(time.perf_counter() - started)
            found.append(_prediction(prediction, version, rows.schema))
    return answers


def _prediction(prediction: list, version: int, schema: Schema) -> Prediction:
    what = "one probability per row" if schema.packed else "class probabilities per row"
    try:
        if len(prediction) != 1:
            raise ServingHTTPError(502, "not one prediction")
        read = predictions.read(prediction[0], schema)
    except ServingHTTPError:
        read = None
    if read is None or not all(0.0 <= p <= 1.0 for p in read.probabilities):
        raise ServingHTTPError(502, f"v{version} answered {str(prediction)[:80]}, not {what}")
    return read


def summarize(versions: tuple[int, int], specs: tuple[str, str], rows: Rows, answers, show: int = DEFAULT_SHOW) -> dict:
    """The comparison as JSON-ready data; ``answers`` is ``(predictions, latencies or None)`` per version.

    A row's ``a``/``b`` is the second class's probability for a packed schema (the demo's p), else
    the probability of the class that version predicts (``a_class``/``b_class``)."""
    (pa, la), (pb, lb) = answers
    diffs = [predictions.difference(a, b) for a, b in zip(pa, pb, strict=True)]
    agree = sum(predictions.agree(a, b) for a, b in zip(pa, pb, strict=True))
    worst = sorted((i for i in range(len(diffs)) if diffs[i] > 0), key=lambda i: -diffs[i])[:show]
    sides = []
    for version, spec, found, latencies in ((versions[0], specs[0], pa, la), (versions[1], specs[1], pb, lb)):
        side = {"version": version, "spec": spec, "accuracy_percent": None, "latency_ms": None}
        if rows.labels is not None and rows.schema.label.is_number:  # a number: its rmse on the labelled rows
            errors = [(p.value or 0.0) - y for p, y in zip(found, rows.labels, strict=True)]
            side["rmse"] = round(math.sqrt(sum(e * e for e in errors) / len(errors)), 6)
        elif rows.labels is not None:
            hits = sum(p.index == y for p, y in zip(found, rows.labels, strict=True))
            side["accuracy_percent"] = round(100.0 * hits / len(found), 4)
        if latencies:
            side["latency_ms"] = {"p50": _percentile_ms(latencies, 0.50), "p99": _percentile_ms(latencies, 0.99)}
        sides.append(side)
    return {
        "a": sides[0], "b": sides[1], "rows": len(diffs), "source": rows.source,
        "labelled": rows.labels is not None,
        "class_agreement": round(agree / len(diffs), 6),
        "mean_abs_diff": round(sum(diffs) / len(diffs), 6),
        "max_abs_diff": round(max(diffs), 6),
        "disagree_most": [_row_record(i, rows, pa[i], pb[i], diffs[i]) for i in worst],
        "computed_at": now_iso(),
    }


def _row_record(i: int, rows: Rows, a: Prediction, b: Prediction, diff: float) -> dict:
    schema = rows.schema
    if schema.label.is_number:
        shown = {name: (None if isinstance(v, float) and math.isnan(v) or v == "" else v)
                 for name, v in rows.x[i].items()}
        return {"row": i + 1, "x": shown, "label": None if rows.labels is None else rows.labels[i],
                "a": round(a.value or 0.0, 6), "b": round(b.value or 0.0, 6), "abs_diff": round(diff, 6)}
    label = None if rows.labels is None else schema.label.classes[int(rows.labels[i])]
    if schema.packed:
        return {"row": i + 1, "x": [round(v, 6) for v in rows.x[i]], "label": label,
                "a": round(a.probabilities[-1], 6), "b": round(b.probabilities[-1], 6), "abs_diff": round(diff, 6)}
    shown = {name: (None if isinstance(v, float) and math.isnan(v) or v == "" else v) for name, v in rows.x[i].items()}
    return {"row": i + 1, "x": shown, "label": label, "a": round(a.probability, 6), "a_class": a.name(schema),
            "b": round(b.probability, 6), "b_class": b.name(schema), "abs_diff": round(diff, 6)}


def _percentile_ms(seconds: list[float], q: float) -> float:
    """Nearest-rank percentile, in milliseconds."""
    ordered = sorted(seconds)
    return round(ordered[max(0, math.ceil(q * len(ordered)) - 1)] * 1000.0, 3)


def crossed(result: dict, max_diff: float | None, min_agreement: float | None) -> list[str]:
    """The bounds the comparison crosses, worded for the user (empty: within bounds)."""
    out = []
    if max_diff is not None and result["mean_abs_diff"] > max_diff:
        out.append(f"mean absolute difference {result['mean_abs_diff']:.6g} > --max-diff {max_diff:g}")
    if min_agreement is not None and result["class_agreement"] < min_agreement:
        out.append(f"class agreement {result['class_agreement']:.6g} < --min-agreement {min_agreement:g}")
    return out


def compare_served(config: Config, client: ServingClient, specs: tuple[str, str], rows: Rows, load: bool = False,
                   show: int = DEFAULT_SHOW) -> dict:
    """Resolve ``specs`` against what serving has loaded, ask both versions, summarize.

    ``load``: versions serving has not loaded are listed in the model config file the trainer
    writes (``rollout.mode`` shadow or canary) for the comparison, then dropped again.
    """
    store = ModelStore(config.models_dir)
    # Serving runs from the trainer's model config file in every rollout.mode (compose, local mode, Kubernetes);
    # one that does not is told so by loaded_beside's wait.
    versions, missing = resolve(client, store, specs, load, config_file=True)
    if not missing:
        result = summarize(versions, specs, rows, ask_serving(client, versions, rows), show)
    else:
        with rollout_control.loaded_beside(config, store, client, missing):
            result = summarize(versions, specs, rows, ask_serving(client, versions, rows), show)
    return {**result, "lineage": lineage_differences(store, versions),
            "reasons": compare_reasons.moved(store, versions)}


def lineage_differences(store: ModelStore, versions: tuple[int, int]) -> dict:
    """Where the two versions' lineage differs, and which versions recorded none."""
    found = [(store.metrics(v) or store.metrics(v, retired=True) or {}).get("lineage") for v in versions]
    unrecorded = [v for v, recorded in zip(versions, found, strict=True) if not isinstance(recorded, dict)]
    return {"unrecorded": unrecorded, "differences": [] if unrecorded else lineage.differences(*found)}


def format_text(result: dict) -> list[str]:
    """The comparison as the lines the command prints."""
    a, b = result["a"], result["b"]
    names = [f"v{a['version']}", f"v{b['version']}"]
    titles = [f"{n} ({s['spec']})" if not s["spec"].isdigit() else n for n, s in zip(names, (a, b), strict=True)]
    differ = round(result["rows"] * (1 - result["class_agreement"]))
    lines = [
        f"{titles[0]} vs {titles[1]} on {result['source']}",
        f"  class agreement   {100 * result['class_agreement']:.2f}% ({differ} of {result['rows']} rows differ)",
        f"  probability diff  mean {result['mean_abs_diff']:.4f}, max {result['max_abs_diff']:.4f}",
    ]
    if result["labelled"]:
        lines.append(f"  accuracy          {names[0]} {a['accuracy_percent']:.2f}%, "
                     f"{names[1]} {b['accuracy_percent']:.2f}%")
    if a["latency_ms"]:
        lines.append("  latency p50/p99   " + ", ".join(
            f"{n} {s['latency_ms']['p50']:.2f}/{s['latency_ms']['p99']:.2f} ms"
            for n, s in zip(names, (a, b), strict=True)))
    lines.extend(_lineage_lines(result.get("lineage"), names))
    lines.extend(compare_reasons.lines(result.get("reasons"), names))
    if result["disagree_most"]:
        lines.append("  rows where they disagree most:")
        if all(isinstance(r["x"], list) for r in result["disagree_most"]):
            lines.append(f"  {'row':>6} {'x1':>9} {'x2':>9} {'label':>5} {names[0]:>8} {names[1]:>8} {'diff':>8}")
            for r in result["disagree_most"]:
                label = "" if r["label"] is None else r["label"]
                lines.append(f"  {r['row']:>6} {r['x'][0]:>9.4f} {r['x'][1]:>9.4f} {label:>5} "
                             f"{r['a']:>8.4f} {r['b']:>8.4f} {r['abs_diff']:>8.4f}")
        else:
            for r in result["disagree_most"]:
                label = "" if r["label"] is None else f" label {r['label']}:"
                values = ", ".join(f"{k}={'' if v is None else v}" for k, v in r["x"].items())
                lines.append(f"  row {r['row']}:{label} {names[0]} {r['a_class']} {r['a']:.4f}, {names[1]} "
                             f"{r['b_class']} {r['b']:.4f} (max diff {r['abs_diff']:.4f}); {values}")
    return lines


def _lineage_lines(found: dict | None, names: list[str]) -> list[str]:
    if not found:
        return []
    if found["unrecorded"]:
        return [f"  lineage           not recorded for {', '.join(f'v{v}' for v in found['unrecorded'])}"]
    if not found["differences"]:
        return ["  lineage           the same code, libraries, config, data and seed"]
    return ["  lineage differs:", *(f"    {d['key']}: {names[0]} {_value(d['a'])}, {names[1]} {_value(d['b'])}"
                                  for d in found["differences"])]


def _value(value) -> str:
    if isinstance(value, dict):
        return lineage.describe_code(value)
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


# --- after a promotion (trainer) ---


def after_promotion(config: Config, version: int, log) -> dict | None:
    """Store the comparison of the newly served ``version`` with the version before it in its
    ``metrics.json`` (``comparison``) and note it in the run log. Never raises: a comparison
    that cannot be made is logged and skipped, the promotion stands."""
    try:
        store = ModelStore(config.models_dir)
        older = [v for v in store.versions() if v < version]
        if not older:
            return None
        versions, rows = (version, older[-1]), held_out_rows(config, limit=None)  # the gate's eval rows
        answers = [(_in_process(store.path(v), rows), None) for v in versions]
        result = summarize(versions, ("served", "previous"), rows, answers)
        store.annotate(version, "comparison", result)
    except Exception as exc:  # noqa: BLE001 (a comparison must never fail the run)
        log.detail(f"compare: no comparison of v{version} with the previous version: {type(exc).__name__}: {exc}")
        return None
    log.note(f"compare: v{version} vs v{versions[1]}: class agreement {100 * result['class_agreement']:.2f}%, "
             f"mean |diff| {result['mean_abs_diff']:.4f}, max {result['max_abs_diff']:.4f} on {result['rows']} rows")
    return result


def _in_process(path: Path, rows: Rows) -> list[Prediction]:
    """Each row's prediction from the SavedModel at ``path``, through the signature TF Serving runs."""
    import numpy as np

    from modelops.trainer.model import network as model

    signature = model.load_signature(path)
    if rows.schema.packed:
        found = model.predict(signature, np.asarray(rows.x, dtype=np.float32)).reshape(-1).tolist()
        return [predictions.read([p], rows.schema) for p in found]
    feeds = {f.name: np.asarray([r[f.name] for r in rows.x], dtype=np.float32) if f.numeric
             else np.asarray([str(r[f.name]).encode() for r in rows.x], dtype=object) for f in rows.schema.features}
    if rows.schema.label.is_number:
        return [Prediction((), 0, float(v)) for v in signature.run(feeds)["value"]]
    probabilities = signature.run(feeds)["probabilities"]
    return [Prediction(tuple(map(float, p)), int(np.argmax(p))) for p in probabilities]
