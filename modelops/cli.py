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

from modelops import data, history, pipeline, signals, verify
from modelops.config import Config, load_config
from modelops.errors import ConfigError, ModelopsError
from modelops.exit_codes import ExitCode
from modelops.store import ModelStore

EPILOG = """exit codes:
  0  promoted (or the command succeeded); a promotion serving could not confirm is
     reported as UNVERIFIED (verify.on_unreachable=warn)
  3  the candidate was rejected by the gate; the served version is unchanged
  2  usage or config.json error (the message names the key)
  1  a step failed (nothing was published), the promoted version did not answer like
     the gated model on TF Serving and was rolled back, or another run holds the lock

After a promotion the run checks that TF Serving ($TF_HOST, default http://localhost:8501)
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
    sub.add_parser("train", help="train and evaluate a candidate into runs/ without publishing")
    sub.add_parser("status", help="published versions, which one is served, recent decisions")
    p = sub.add_parser("rollback", help="retire the served version so the previous one serves again")
    p.add_argument("--to", type=_positive_int, metavar="N", help="roll back to version N (retiring all above it)")
    p.add_argument("--reason", default="manual rollback", help="recorded in the history and notifications")
    p.add_argument("--wait", type=_seconds, default=0.0, metavar="SECONDS")
    p = sub.add_parser("history", help="the decision history")
    p.add_argument("--limit", type=_positive_int, default=20, metavar="N", help="last N records (default 20)")
    p.add_argument("--json", action="store_true", help="print JSON lines")
    p = sub.add_parser("simulate", help="write a synthetic data batch into data/incoming/")
    p.add_argument("--rows", type=_positive_int, default=500, metavar="N", help="rows to write (default 500)")
    p.add_argument("--noise", type=_fraction, default=0.0, metavar="P",
                   help="extra fraction of flipped labels, 0..1 (e.g. 0.3 makes the gate reject)")
    p.add_argument("--shift", type=float, default=0.0, metavar="D", help="move the decision boundary by D")
    p.add_argument("--seed", type=int, default=None, metavar="S", help="random seed (default: time based)")
    return parser


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


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def main(argv: list[str] | None = None, default_command: str = "retrain") -> int:
    args = build_parser().parse_args(argv)
    command = args.command or default_command
    try:
        config = load_config(args.config)
        with signals.interrupts():
            return _run(command, args, config)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return ExitCode.FAILED
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    except ModelopsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.FAILED


def train_main() -> int:
    """``train_tf.py``: train a candidate into ``runs/`` unless another command is given."""
    return main(default_command="train")


def _run(command: str, args: argparse.Namespace, config: Config) -> int:
    if command == "retrain":
        result = pipeline.retrain(config, wait_seconds=getattr(args, "wait", 0.0), verifier=verify.ServingVerifier())
        print(f"{result.outcome}: {result.message}", file=sys.stdout if result.exit_code == ExitCode.OK else sys.stderr)
        return result.exit_code
    if command == "train":
        path = pipeline.train_only(config)
        print(f"candidate written to {path} (not published; run 'python retrain_pipeline.py' to gate it)")
        return ExitCode.OK
    if command == "status":
        print("\n".join(status_lines(config)))
        return ExitCode.OK
    if command == "rollback":
        retired, served = pipeline.rollback(config, args.to, args.reason, args.wait)
        print(f"retired v{', v'.join(map(str, retired))}; v{served} is the served version again")
        return ExitCode.OK
    if command == "history":
        records = history.read(config.history_path, limit=args.limit)
        if not records:
            print(f"no decisions recorded yet in {config.history_path}")
        for r in records:
            print(json.dumps(r) if args.json else format_record(r))
        return ExitCode.OK
    path = data.simulate(config, args.rows, args.noise, args.shift, args.seed)
    print(f"wrote {args.rows} rows to {path}; the next retrain picks it up")
    return ExitCode.OK


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
        acc = m.get("test_accuracy_percent")
        acc_text = f"{acc:.2f}%" if isinstance(acc, (int, float)) else "accuracy unknown"
        lines.append(f"  v{v}: {acc_text}, promoted {m.get('promoted_at', '?')}{served}")
    retired = store.retired()
    if retired:
        lines.append(f"retired: {', '.join(f'v{v}' for v in retired)}")
    records = history.read(config.history_path, limit=recent)
    if records:
        lines.append("recent decisions:")
        lines.extend(f"  {format_record(r)}" for r in reversed(records))
    return lines


def format_record(r: dict) -> str:
    """One history record as a line: time, event, version, accuracy, reasons."""
    version = f" v{r['version']}" if r.get("version") is not None else ""
    acc = f" {r['accuracy_percent']:.2f}%" if isinstance(r.get("accuracy_percent"), (int, float)) else ""
    reasons = "; ".join(r.get("reasons") or [])
    return f"{r.get('time', '?')} {r.get('event', '?'):<13}{version}{acc} {reasons}".rstrip()


if __name__ == "__main__":
    sys.exit(main())
