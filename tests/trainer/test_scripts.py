"""scripts/install_cron.sh against a fake crontab (never the user's), and manual_train.sh."""

import subprocess

import pytest

from harness import REPO, tool

SCRIPTS = ("install_cron.sh", "manual_train.sh")


@pytest.fixture
def cron(tmp_path):
    """Run install_cron.sh with $CRONTAB pointing at a fake that keeps the table in a file."""
    table = tmp_path / "crontab.txt"
    fake = tmp_path / "crontab"
    fake.write_text(f"""#!/bin/sh
case "$1" in
  -l) [ -f '{table}' ] && exec cat '{table}'; echo "no crontab for $USER" >&2; exit 1 ;;
  -) exec cat > '{table}' ;;
esac
exit 2
""")
    fake.chmod(0o755)

    def run(*args):
        return subprocess.run([str(REPO / "scripts/install_cron.sh"), *args], env={"CRONTAB": str(fake), "PATH": "/usr/bin:/bin"},
                              capture_output=True, text=True, timeout=60)

    return run, table


def test_install_is_idempotent_keeps_other_lines_and_remove_takes_it_out(cron):
    run, table = cron
    table.write_text("5 4 * * * echo someone else\n")
    printed = run("--print")
    assert printed.returncode == 0, printed.stderr
    line = printed.stdout.strip()
    assert line.startswith("0 2 * * 0 cd ")  # schedule.cron from config.json
    assert f"'{REPO}/.venv/bin/python' retrain_pipeline.py >> '{REPO}/runs/cron.log' 2>&1" in line
    assert run().returncode == 0 and run().returncode == 0
    assert table.read_text().splitlines() == ["5 4 * * * echo someone else", line]
    removed = run("--remove")
    assert removed.returncode == 0, removed.stderr
    assert table.read_text().splitlines() == ["5 4 * * * echo someone else"]
    assert "nothing to remove" in run("--remove").stdout


def test_install_works_without_an_existing_crontab(cron):
    run, table = cron
    assert run().returncode == 0
    assert len(table.read_text().splitlines()) == 1
    assert run("--bogus").returncode == 2


def test_scripts_pass_shellcheck():
    shellcheck = tool("shellcheck")
    result = subprocess.run([shellcheck, *(str(REPO / "scripts" / s) for s in SCRIPTS)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_manual_train_passes_arguments_and_keeps_the_exit_code(tmp_path):
    result = subprocess.run([str(REPO / "scripts/manual_train.sh"), "--config", str(tmp_path / "missing.json")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "config file not found" in result.stderr
