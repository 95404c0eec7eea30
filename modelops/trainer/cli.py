"""``retrain_pipeline.py`` / ``train_tf.py`` command line; maps outcomes to exit codes.

Exit codes: 0 promoted (or command succeeded), 3 rejected by the gate, 2 usage or config error,
1 failure (a step failed, the promoted version failed verification and was rolled back, or
another run holds the lock). SIGTERM is handled like Ctrl-C: the run aborts, records why, and
nothing half-done is left in ``models/``. The presentation of the store and the history
(``status``, ``history``) lives here too: only the command line shows them as text.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from modelops.core import filemodes, history, lineage, scores, stats
from modelops.core.config import Config, load_config
from modelops.core.errors import ConfigError, ModelopsError, UsageError
from modelops.core.exit_codes import ExitCode, usage_exit
from modelops.core.model_name import served_model_name
from modelops.core.schema import recorded_schema
from modelops.core.store import ModelStore
from modelops.trainer import batch_drift, compare, reproduce, rollout_control, score, signals
from modelops.trainer.data import handoff, synthetic
from modelops.trainer.retrain import late_verification, rollback, run, verify

EPILOG = """exit codes:
  0  promoted (or the command succeeded); a promotion serving could not confirm is
     reported as UNVERIFIED (verify.on_unreachable=warn)
  3  the candidate was rejected by the gate; the served version is unchanged
     (compare: the two versions are further apart than --max-diff/--min-agreement allow;
     reproduce: the retrained accuracy is further than reproduce.tolerance_percent from the recorded one)
  2  usage or config.json error (the message names the key or the input that is wrong)
  1  a step failed (nothing was published), the promoted version did not answer like
     the gated model on TF Serving and was rolled back, or another run holds the lock
  4  score: some rows had errors (marked in the error column); the others were scored
  5  score: nothing was scored (no valid row, or TF Serving could not be reached)

After a promotion the run checks that TF Serving ($TF_HOST, else $BIND_ADDRESS:$TF_REST_PORT, else http://localhost:8501)
serves the new version and answers like the gated model; otherwise it rolls back.
Run with no command to retrain, as cron does: python retrain_pipeline.py"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="retrain_pipeline.py",
        description="Gated retraining of the classifier served by TF Serving.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", help="path to config.json (default: $MODELOPS_CONFIG or ./config.json)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("retrain", help="ingest new data, train, gate, publish (the default)")
    p.add_argument("--wait", type=_seconds, default=0.0, metavar="SECONDS",
                   help="wait this long for another run to finish instead of exiting (default 0)")
    p.add_argument("--trigger", metavar="TEXT", help=argparse.SUPPRESS)  # set by the trainer service's triggers
    p.add_argument("--force", action="store_true",
                   help="train even when no new rows were accepted since the served version (default: "
                        "such a run publishes nothing and records up-to-date)")
    sub.add_parser("train", help="train and evaluate a candidate into runs/ without publishing")
    sub.add_parser("status", help="published versions, which one is served, recent decisions")
    p = sub.add_parser("rollback", help="retire the served version so the previous one serves again")
    p.add_argument("--to", type=_positive_int, metavar="N", help="roll back to version N (retiring all above it)")
    p.add_argument("--reason", default="manual rollback", help="recorded in the history and notifications")
    p.add_argument("--wait", type=_seconds, default=0.0, metavar="SECONDS")
    p = sub.add_parser("rollout", help="the staged rollout in progress: status, step, advance or abort it")
    p.add_argument("action", nargs="?", default="status", choices=("status", "step", "advance", "abort"),
                   help="status (default); step: decide on the live evidence now, as the trainer service "
                        "does; advance: take the next step whatever the evidence; abort: retire the candidate")
    p.add_argument("--wait", type=_seconds, default=0.0, metavar="SECONDS")
    p = sub.add_parser("verify", help="verify the served version if it has no verification record yet (a first "
                                      "model, published before TF Serving ran; the trainer service does it by itself)")
    p.add_argument("--wait", type=_seconds, default=0.0, metavar="SECONDS")
    p = sub.add_parser("history", help="the decision history")
    p.add_argument("--limit", type=_positive_int, default=20, metavar="N", help="last N records (default 20)")
    p.add_argument("--json", action="store_true", help="print JSON lines")
    p = sub.add_parser("drift", help="the recent batches scored against the serving model's training rows (PSI)")
    p.add_argument("--batches", type=_positive_int, default=batch_drift.RECENT_BATCHES, metavar="N",
                   help=f"the newest N accepted batches (default {batch_drift.RECENT_BATCHES})")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p = sub.add_parser("simulate", help="write a synthetic data batch into data/incoming/")
    p.add_argument("--rows", type=_positive_int, default=500, metavar="N", help="rows to write (default 500)")
    p.add_argument("--noise", type=_fraction, default=0.0, metavar="P",
                   help="extra fraction of flipped labels, 0..1 (e.g. 0.3 makes the gate reject)")
    p.add_argument("--shift", type=float, default=0.0, metavar="D", help="move the decision boundary by D")
    p.add_argument("--seed", type=int, default=None, metavar="S", help="random seed (default: time based)")
    p = sub.add_parser("add-batch", help="copy CSV batches into data/incoming/ (under compose: through exec -T)",
                       description="Copy each FILE into data/incoming/ under a .partial name, then rename it: the "
                                   "next retrain judges it. '-' reads standard input (give --name), as under Docker "
                                   "Compose: docker compose exec -T trainer python retrain_pipeline.py add-batch "
                                   "--name week-01.csv - < week-01.csv")
    p.add_argument("files", nargs="+", metavar="FILE", help="a CSV file, or - for standard input")
    p.add_argument("--name", help="the batch's name in data/incoming/ (needed with -)")
    p = sub.add_parser("reproduce", help="retrain version N from its recorded lineage; does it score the same?",
                       description="Retrain version N in a scratch folder from the batches, config copy and seed "
                                   "its lineage recorded, evaluate it on the same eval rows and compare its accuracy "
                                   "with the recorded one. Nothing is published.")
    p.add_argument("version", type=_positive_int, metavar="N", help="the version to reproduce")
    _add_compare(sub)
    score.add_parser(sub)
    return parser


def _add_compare(sub) -> None:
    p = sub.add_parser("compare", help="send the same rows to two served versions; how far apart are they?",
                       description="Send the same rows to versions A and B on TF Serving ($TF_HOST) and report "
                                   "class agreement, probability differences, accuracy and latency of each.")
    for name, default in (("a", "served"), ("b", "previous")):
        p.add_argument(name, nargs="?", default=default, type=_version_spec, metavar=name.upper(),
                       help=f"a version number, 'served' or 'previous' (default {default})")
    rows = p.add_mutually_exclusive_group()
    rows.add_argument("--rows", type=_positive_int, default=compare.DEFAULT_ROWS, metavar="N",
                      help=f"the first N held-out rows of the current dataset (default {compare.DEFAULT_ROWS})")
    rows.add_argument("--input", type=Path, metavar="FILE.csv",
                      help="rows from a CSV with columns x1,x2 and, to measure accuracy, label")
    p.add_argument("--show", type=_count, default=compare.DEFAULT_SHOW, metavar="K",
                   help=f"list the K rows where they disagree most (default {compare.DEFAULT_SHOW})")
    p.add_argument("--max-diff", type=_fraction, metavar="D",
                   help="exit 3 when the mean absolute probability difference is above D")
    p.add_argument("--min-agreement", type=_fraction, metavar="F",
                   help="exit 3 when the versions predict the same class on less than this fraction of rows")
    p.add_argument("--load", action="store_true",
                   help="load a published version serving has not loaded, for this comparison (rollout.mode "
                        "shadow or canary: serving runs from the trainer's model config file)")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON")


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 86400:
        raise argparse.ArgumentTypeError("must be between 0 and 86400 seconds")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _version_spec(text: str) -> str:
    if text in ("served", "previous") or (text.isdigit() and int(text) >= 1):
        return text
    raise argparse.ArgumentTypeError(f"{text!r} is not a version: give a number, 'served' or 'previous'")


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def main(argv: list[str] | None = None, default_command: str = "retrain") -> int:
    args = build_parser().parse_args(argv)
    command = args.command or default_command
    try:
        filemodes.apply_umask()
        config = load_config(args.config)
        served_model_name(config)  # MODEL_NAME set to another name: stop here, before any work
        with signals.interrupts():
            return _run(command, args, config)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return ExitCode.FAILED
    except (ConfigError, UsageError) as exc:
        return usage_exit(exc)
    except ModelopsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.FAILED


def train_main() -> int:
    """``train_tf.py``: train a candidate into ``runs/`` unless another command is given."""
    return main(default_command="train")


def _run(command: str, args: argparse.Namespace, config: Config) -> int:
    if command == "retrain":
        result = run.retrain(config, wait_seconds=getattr(args, "wait", 0.0), verifier=verify.ServingVerifier(),
                             trigger=getattr(args, "trigger", None), force=getattr(args, "force", False))
        print(f"{result.outcome}: {result.message}", file=sys.stdout if result.exit_code == ExitCode.OK else sys.stderr)
        return result.exit_code
    if command == "train":
        path = run.train_only(config)
        print(f"candidate written to {path} (not published; run 'python retrain_pipeline.py' to gate it)")
        return ExitCode.OK
    if command == "status":
        print("\n".join(status_lines(config)))
        if rollout_control.active(config) is not None:  # the highest version is the candidate, not served
            print("\n".join(rollout_control.status_lines(config, rollout_control.frontend_evidence(timeout=2.0))))
        return ExitCode.OK
    if command == "rollback":
        retired, served = rollback.rollback(config, args.to, args.reason, args.wait)
        print(f"retired v{', v'.join(map(str, retired))}; v{served} is the served version again")
        return ExitCode.OK
    if command == "rollout":
        return _rollout(args, config)
    if command == "history":
        records = history.read(config.history_path, limit=args.limit)
        if not records:
            print(f"no decisions recorded yet in {config.history_path}")
        for r in records:
            print(json.dumps(r) if args.json else format_record(r))
        if records.skipped:  # on stderr: --json output stays one record per line
            print(f"warning: {history.damage_note(config.history_path, records.skipped)}", file=sys.stderr)
        return ExitCode.OK
    if command == "compare":
        return _compare(args, config)
    if command == "score":
        return score.run(args, config)
    if command == "drift":
        report = batch_drift.recent(config, args.batches)
        print(json.dumps(report, indent=2) if args.json else "\n".join(batch_drift.format_table(report)))
        return ExitCode.OK
    if command == "verify":
        checked = late_verification.verify_late(config, verify.ServingVerifier(), args.wait)
        if checked is None:
            print("nothing to verify: the served version has its verification record (or nothing is served)")
            return ExitCode.OK
        ok = checked.exit_code == ExitCode.OK
        print(f"{checked.outcome}: {checked.message}", file=sys.stdout if ok else sys.stderr)
        return checked.exit_code
    if command == "reproduce":
        reproduction = reproduce.reproduce(config, args.version)
        print("\n".join(reproduction.lines()))
        return ExitCode.OK if reproduction.within else ExitCode.REJECTED
    if command == "add-batch":
        print("\n".join(handoff.add_batches(config, args.files, args.name)))
        return ExitCode.OK
    path = synthetic.simulate(config, args.rows, args.noise, args.shift, args.seed)
    print(f"wrote {args.rows} rows to {path}; the next retrain picks it up")
    return ExitCode.OK


def _value_scores(metrics: dict) -> list[str]:
    """A number label's scores (rmse, mae in its units, r2), one line; none for a class label."""
    scores = metrics.get("scores")
    if not isinstance(scores, dict):
        return []
    shown = [f"{k} {scores[k]:.4g}" for k in ("rmse", "mae", "r2") if isinstance(scores.get(k), (int, float))]
    return [f"      scores: {', '.join(shown)}"] if shown else []


def status_lines(config: Config, recent: int = 5) -> list[str]:
    """What is published, what TF Serving will serve, and the last decisions."""
    store = ModelStore(config.models_dir)
    versions = store.versions()
    lines = [f"model {config.model_name} in {store.root}"]
    if not versions:
        lines.append("no published version yet: run 'python retrain_pipeline.py'")
    for v in reversed(versions):
        m = store.metrics(v) or {}
        served = "  <- served (highest version)" if v == versions[-1] else ""
        lines.append(f"  v{v}: {scores.text(m)}, promoted {m.get('promoted_at', '?')}{served}")
        gate = m.get("gate")
        evidence = stats.describe(gate.get("comparison")) if isinstance(gate, dict) else None
        if evidence:
            lines.append(f"      gate: {evidence}")
        lines.append(f"      lineage: {lineage.summary(m.get('lineage'))}")
        lines.extend(_value_scores(m))
    if versions:
        own = recorded_schema(store.metrics(versions[-1]))
        lines.append(f"served schema: {own.describe() if own else 'unreadable in its metrics.json'}")
        if own is None or own.to_config() != config.schema.to_config():
            lines.append(f"config.json now declares: {config.schema.describe()} (the next retrain trains on it)")
    retired = store.retired()
    if retired:
        lines.append(f"retired: {', '.join(f'v{v}' for v in retired)}")
    records = history.read(config.history_path, limit=recent)
    if records:
        lines.append("recent decisions:")
        lines.extend(f"  {format_record(r)}" for r in reversed(records))
    if records.skipped:
        lines.append(f"warning: {history.damage_note(config.history_path, records.skipped)}")
    return lines


def format_record(r: dict) -> str:
    """One history record as a line: time, event, version, score (by the run's gate.metric), reasons."""
    version = f" v{r['version']}" if r.get("version") is not None else ""
    score = f" {r['accuracy_percent']:.2f}%" if isinstance(r.get("accuracy_percent"), (int, float)) else ""
    reasons = "; ".join(map(str, r.get("reasons") or []))
    return f"{r.get('time', '?')} {r.get('event', '?'):<13}{version}{score} {reasons}".rstrip()


def _compare(args: argparse.Namespace, config: Config) -> int:
    if args.input is not None:  # a bad file is reported before serving is asked anything
        rows = compare.read_csv(args.input, config.data.max_abs_feature, config.data.max_batch_rows, config.schema)
    else:
        rows = compare.held_out_rows(config, args.rows)
    result = compare.compare_served(config, verify.serving_client(config), (args.a, args.b), rows, args.load,
                                    args.show)
    result["bounds"] = {"max_diff": args.max_diff, "min_agreement": args.min_agreement,
                        "crossed": compare.crossed(result, args.max_diff, args.min_agreement)}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print("\n".join(compare.format_text(result)))
        for reason in result["bounds"]["crossed"]:
            print(f"BOUND CROSSED: {reason}", file=sys.stderr)
    return ExitCode.REJECTED if result["bounds"]["crossed"] else ExitCode.OK


def _rollout(args: argparse.Namespace, config: Config) -> int:
    evidence = rollout_control.frontend_evidence()
    if args.action == "status":
        print("\n".join(rollout_control.status_lines(config, evidence)))
        return ExitCode.OK
    force = None if args.action == "step" else args.action
    step = rollout_control.tick(config, evidence, verify.serving_client(config, timeout=5.0),
                                force=force, wait_seconds=args.wait)
    if step is None:
        print("no rollout in progress", file=sys.stderr if force else sys.stdout)
        return ExitCode.FAILED if force else ExitCode.OK
    current, decision = step
    print(f"v{current.candidate} ({current.phase}): {decision.action}: {'; '.join(decision.reasons)}")
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
