"""The game day's own commands (`game_day.chaos_commands`, `contract_command`): run without a
shell, their exit code and output recorded, a secret variable's value never in the record."""

from __future__ import annotations

import sys

from tasks.faults import run_command


def test_a_commands_output_is_recorded_without_the_secrets_it_printed(monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_s3cretvalue")
    monkeypatch.setenv("GOLIVE_GPG_PASSPHRASE", "correct horse battery")
    monkeypatch.setenv("CHAOS_TARGET", "payments")  # not a secret: kept
    script = ("import os; print(os.environ['GITHUB_TOKEN'], os.environ['GOLIVE_GPG_PASSPHRASE'], "
              "os.environ['CHAOS_TARGET'], 'https://u:pw@git.example/x'); raise SystemExit(3)")
    run = run_command.fn(f"{sys.executable} -c \"{script}\"")
    assert run["exit_code"] == 3
    assert run["output_tail"] == "*** *** payments https://git.example/x\n"


def test_a_command_that_cannot_start_is_recorded_without_an_exit_code():
    run = run_command.fn("/nonexistent/chaos-tool --now")
    assert run["exit_code"] is None and "No such file or directory" in run["output_tail"]
