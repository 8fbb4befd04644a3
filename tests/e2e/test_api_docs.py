"""docs/api.md's examples run as written against a real server."""
from __future__ import annotations

import json
import os
import re
import subprocess

import pytest

from tests.e2e.conftest import unique
from tests.support.server import ROOT, TEST_PASSWORD, flask_cli

pytestmark = pytest.mark.e2e

DOC = ROOT / "docs" / "api.md"


def shell_blocks(text: str) -> list[str]:
    """The ```sh blocks, in order (```console blocks are shown, not run)."""
    return re.findall(r"^```sh\n(.*?)^```", text, re.S | re.M)


def test_the_walk_through_runs_in_order_in_one_shell(server, sqlite_env, tmp_path):
    blocks = shell_blocks(DOC.read_text())
    assert len(blocks) >= 8, "docs/api.md lost its examples"
    # An account of its own: the walk-through creates a room, and the shared
    # accounts' room budget (10 an hour) belongs to the other e2e tests.
    user = unique("reader")[:32]
    flask_cli(sqlite_env, "create-user", user, "--password-stdin", stdin=TEST_PASSWORD + "\n")
    bot = unique("docbot")[:32]
    key = re.search(r"^key: (\S+)$", flask_cli(sqlite_env, "create-bot", bot), re.M).group(1)
    env = {**os.environ, "PARLEY": server.url, "PARLEY_USER": user,
           "PARLEY_PASSWORD": TEST_PASSWORD, "PARLEY_BOT_KEY": key}
    script = "set -euo pipefail\n" + "\n".join(blocks)
    result = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    out = result.stdout
    sends = [json.loads(line) for line in out.splitlines()
             if line.startswith("{") and "Deployed v1.2" in line]
    assert len(sends) == 2 and sends[0] == sends[1], "the repeated Idempotency-Key"
    assert "reuse: 401" in out
    assert "the rotated token after the reuse: 401" in out
    assert '"code":"invalid"' in out.replace(" ", "")
    assert f'"username":"{bot}"' in out and '"bot":true' in out
