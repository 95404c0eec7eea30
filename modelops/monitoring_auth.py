"""Basic auth for Prometheus and Alertmanager, which have none of their own by default.

Both answer anyone who reaches them: Alertmanager's API takes silences (mute every alert) and
shows its configuration; Prometheus shows every metric. Bound to loopback (the default) only this
machine reaches them; bound beyond it (``BIND_ADDRESS=0.0.0.0``) the launcher requires a
password: ``MONITORING_PASSWORD`` (from the environment, or ``.env``; user ``MONITORING_USER``,
default ``modelops``). It writes, readable by the stack's user alone (0600):

- ``web.yml`` for both servers' ``--web.config.file``, holding only the password's bcrypt hash;
- ``monitoring-password``, the password itself, which Prometheus's own config names
  (``password_file``) where it scrapes itself and where it sends alerts to Alertmanager.

With a password set on loopback, auth is on too. docs/security.md says how to open the stack.

Compose (``monitoring/web_auth.sh`` in the busybox images, which cannot hash) gets the hash in
``MONITORING_PASSWORD_HASH``: the launcher sets it from the password (``compose_env``);
``python -m modelops.monitoring_auth hash`` prints it as a ``.env`` line for a plain
``docker compose up``.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from pathlib import Path

import bcrypt

PASSWORD_ENV = "MONITORING_PASSWORD"  # noqa: S105 (the variable's name, not a password)
USER_ENV = "MONITORING_USER"
DEFAULT_USER = "modelops"
WEB_CONFIG_ENV = "MONITORING_WEB_CONFIG"  # the Procfile passes it as --web.config.file
HASH_ENV = "MONITORING_PASSWORD_HASH"
MIN_PASSWORD = 12


class AuthError(Exception):
    """Auth is needed and cannot be set up; the message names the variable to set."""


def beyond_loopback(bind: str) -> bool:
    return not ipaddress.ip_address(bind).is_loopback


def credentials(env: dict[str, str], bind: str) -> tuple[str, str] | None:
    """``(user, password)`` when auth is on; AuthError when the bind address needs it and none is set."""
    password = env.get(PASSWORD_ENV, "")
    if not password:
        if beyond_loopback(bind):
            raise AuthError(f"BIND_ADDRESS={bind} opens Prometheus and Alertmanager to the network: set "
                            f"{PASSWORD_ENV} (at least {MIN_PASSWORD} characters; user {USER_ENV}, default "
                            f"{DEFAULT_USER}) so they ask for it (docs/security.md)")
        return None
    if len(password) < MIN_PASSWORD or "\n" in password:
        raise AuthError(f"{PASSWORD_ENV} must be one line of at least {MIN_PASSWORD} characters")
    user = env.get(USER_ENV) or DEFAULT_USER
    if not user.replace("-", "").replace("_", "").isalnum():
        raise AuthError(f"{USER_ENV} must be letters, digits, '-' or '_', got {user!r}")
    return user, password


def hashed(password: str) -> str:
    """The bcrypt hash both servers' web config holds (never the password)."""
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10)).decode()


def compose_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` for ``docker compose up``: with ``MONITORING_PASSWORD_HASH`` computed from the password
    (unless given and matching it); AuthError beyond loopback without a password."""
    creds = credentials(env, env.get("BIND_ADDRESS") or "127.0.0.1")
    if creds is None:
        return dict(env)
    given = env.get(HASH_ENV, "")
    if given:
        try:
            if bcrypt.checkpw(creds[1].encode(), given.encode()):
                return dict(env)
        except ValueError:
            pass
        raise AuthError(f"{HASH_ENV} is not the hash of {PASSWORD_ENV}: remove it (the launcher computes it)")
    return {**env, HASH_ENV: hashed(creds[1])}


def write_files(directory: Path, user: str, password: str) -> tuple[Path, Path]:
    """``web.yml`` (the bcrypt hash) and ``monitoring-password`` in ``directory``, both 0600."""
    web = _private(directory / "web.yml", f"# written at start by modelops.monitoring_auth\n"
                                          f"basic_auth_users:\n  {user}: {hashed(password)}\n")
    secret = _private(directory / "monitoring-password", password)
    return web, secret


def with_basic_auth(prometheus_yml: str, user: str, password_file: Path) -> str:
    """Prometheus's config with credentials where it talks to the two servers that now ask for them:
    its own scrape job (``prometheus``) and the Alertmanager it sends alerts to."""
    auth = f"basic_auth: {{username: {user}, password_file: {password_file}}}"
    edits = {
        "  - job_name: prometheus\n": f"  - job_name: prometheus\n    {auth}\n",
        "  alertmanagers:\n    - static_configs:\n": f"  alertmanagers:\n    - {auth}\n      static_configs:\n",
    }
    for old, new in edits.items():
        if old not in prometheus_yml:
            raise AuthError(f"monitoring/prometheus.yml has no {old.strip()!r} to give credentials to")
        prometheus_yml = prometheus_yml.replace(old, new, 1)
    return prometheus_yml


def _private(path: Path, text: str) -> Path:
    """Write ``text`` to a fresh file only its owner can read (never widening an old one's mode)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
    with open(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    return path


def main(argv: list[str] | None = None) -> int:
    """``python -m modelops.monitoring_auth hash``: the ``.env`` line for a plain ``docker compose up``."""
    if (argv if argv is not None else sys.argv[1:]) != ["hash"]:
        print("usage: python -m modelops.monitoring_auth hash  (reads MONITORING_PASSWORD)", file=sys.stderr)
        return 2
    try:
        creds = credentials(dict(os.environ), "0.0.0.0")  # noqa: S104 (asks for the password whatever the bind)
    except AuthError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    assert creds is not None
    print(f"{HASH_ENV}='{hashed(creds[1])}'")
    return 0


if __name__ == "__main__":
    sys.exit(main())
