"""The stand-alone command-line tools in tools/ (outside the DAG) start and describe themselves."""

import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.parametrize("tool", sorted(p.name for p in (REPO / "tools").glob("*.py")))
def test_each_tool_answers_help(tool):
    run = subprocess.run([sys.executable, str(REPO / "tools" / tool), "--help"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.startswith("usage:")
