"""The operator's commands, run as processes the way the docs print them."""
from __future__ import annotations

import pytest

from tests.support.server import ROOT, VENV_BIN, base_env, flask_cli, sign_in

from .conftest import start_server, stop_server

pytestmark = pytest.mark.e2e


def test_a_later_start_names_the_flask_that_is_running(tmp_path):
    # `make run` runs .venv/bin/flask, which is not on PATH: a hint naming a
    # bare `flask` fails with "command not found" when pasted.
    env = base_env(f"sqlite:///{tmp_path / 'parley.sqlite3'}")
    first = flask_cli(env, "ensure-admin")
    assert "Created the first admin." in first
    later = flask_cli(env, "ensure-admin")
    flask = VENV_BIN / "flask"
    expected = flask.relative_to(ROOT) if flask.is_relative_to(ROOT) else flask
    hints = [line.strip() for line in later.splitlines() if "--app wsgi" in line]
    assert len(hints) == 2, later
    assert all(f"| {expected} --app wsgi " in hint for hint in hints), later
    assert any("create-user NAME --password-stdin --admin" in hint for hint in hints)
    assert any("reset-password NAME --password-stdin" in hint for hint in hints)


def test_reset_password_from_the_command_line_lets_the_new_one_sign_in(tmp_path):
    env = base_env(f"sqlite:///{tmp_path / 'parley.sqlite3'}")
    flask_cli(env, "create-user", "alice", "--password-stdin", stdin="correct-horse-battery\n")
    output = flask_cli(env, "reset-password", "alice", "--password-stdin",
                       stdin="another-long-secret\n")
    assert "password reset for alice" in output
    server = start_server(env, "cli-reset")
    try:
        sign_in(server.url, "alice", "another-long-secret")
    finally:
        stop_server(server)
