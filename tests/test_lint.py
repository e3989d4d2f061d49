"""The code stays ruff clean (lint and format), so the test command also guards style."""

import subprocess
import sys

from tests.conftest import REPO


def test_ruff_lint_and_format_are_clean():
    for args in (["check", "."], ["format", "--check", "."]):
        res = subprocess.run([sys.executable, "-m", "ruff", *args], cwd=REPO, capture_output=True, text=True)
        assert res.returncode == 0, res.stdout + res.stderr
