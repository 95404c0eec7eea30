"""``retrain_pipeline.py`` / ``train_tf.py`` command line; maps outcomes to exit codes.

Exit codes: 0 promoted (or command succeeded), 3 rejected by the gate, 2 usage or config error,
1 failure (a step failed, the promoted version failed verification and was rolled back, or
another run holds the lock). SIGTERM is handled like Ctrl-C: the run aborts, records why, and
nothing half-done is left in ``models/``.
"""

from __future__ import annotations

import argparse
import json
import sys

from modelops import data, history, pipeline, rollout_control, verify
from modelops.config import load_config
from modelops.errors import ConfigError, ModelopsError

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
    p.add_argument("--to", type=_version, metavar="N", help="roll back to version N (retiring all above it)")
    p.add_argument("--reason", default="manual rollback", help="recorded in the history and notifications")
    p.add_argument("--wait", type=_seconds, default=0.0, metavar="SECONDS")
    p = sub.add_parser("rollout", help="the staged rollout in progress: status, step, advance or abort it")
    p.add_argument("action", nargs="?", default="status", choices=("status", "step", "advance", "abort"),
                   help="status (default); step: decide on the live evidence now, as the trainer service "
                        "does; advance: take the next step whatever the evidence; abort: retire the candidate")
    p.add_argument("--wait", type=_seconds, default=0.0, metavar="SECONDS")
    p = sub.add_parser("history", help="the decision history")
    p.add_argument("--limit", type=_version, default=20, metavar="N", help="last N records (default 20)")
    p.add_argument("--json", action="store_true", help="print JSON lines")
    p = sub.add_parser("simulate", help="write a synthetic data batch into data/incoming/")
    p.add_argument("--rows", type=_version, default=500, metavar="N", help="rows to write (default 500)")
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


def _version(text: str) -> int:
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
        with pipeline.interrupts():
            return _run(command, args, config)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return pipeline.EXIT_FAILED
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return pipeline.EXIT_USAGE
    except ModelopsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return pipeline.EXIT_FAILED


def _run(command: str, args: argparse.Namespace, config) -> int:
    if command == "retrain":
        result = pipeline.retrain(config, wait_seconds=getattr(args, "wait", 0.0), verifier=verify.ServingVerifier())
        print(f"{result.outcome}: {result.message}", file=sys.stdout if result.exit_code == 0 else sys.stderr)
        return result.exit_code
    if command == "train":
        path = pipeline.train_only(config)
        print(f"candidate written to {path} (not published; run 'python retrain_pipeline.py' to gate it)")
        return 0
    if command == "status":
        print("\n".join(pipeline.status_lines(config)))
        if rollout_control.active(config) is not None:  # the highest version is the candidate, not served
            print("\n".join(rollout_control.status_lines(config, rollout_control.frontend_evidence(timeout=2.0))))
        return 0
    if command == "rollback":
        retired, served = pipeline.rollback(config, args.to, args.reason, args.wait)
        print(f"retired v{', v'.join(map(str, retired))}; v{served} is the served version again")
        return 0
    if command == "rollout":
        return _rollout(args, config)
    if command == "history":
        records = history.read(config.history_path, limit=args.limit)
        if not records:
            print(f"no decisions recorded yet in {config.history_path}")
        for r in records:
            print(json.dumps(r) if args.json else pipeline.format_record(r))
        return 0
    path = data.simulate(config, args.rows, args.noise, args.shift, args.seed)
    print(f"wrote {args.rows} rows to {path}; the next retrain picks it up")
    return 0


def _rollout(args: argparse.Namespace, config) -> int:
    evidence = rollout_control.frontend_evidence()
    if args.action == "status":
        print("\n".join(rollout_control.status_lines(config, evidence)))
        return 0
    force = None if args.action == "step" else args.action
    current, decision = rollout_control.tick(config, evidence, verify.serving_client(config, timeout=5.0),
                                             force=force, wait_seconds=args.wait)
    if current is None:
        print("no rollout in progress", file=sys.stderr if force else sys.stdout)
        return pipeline.EXIT_FAILED if force else 0
    print(f"v{current.candidate} ({current.phase}): {decision.action}: {'; '.join(decision.reasons)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
