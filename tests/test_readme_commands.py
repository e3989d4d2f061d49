"""Every shell command in the documentation is checked, so that a wrong documented command fails the tests.

Commands come from the fenced shell blocks (bash, sh, shell, console or unlabelled) of README.md, */README.md and
docs/**/*.md, and from inline code spans that start with a known program (`snakemake ...`, `python ...`). Backslash
continuations are joined; comments, and output lines where `$ ` prompts are used, are dropped; a line is split on
&& || ; |, and `$(...)` and `sh -c '...'` are commands of their own. `.venv/bin/X` is read as X, python3 as python.

Each command is one test, checked by the first rule of RULES whose pattern matches it (a command no rule matches
fails). Nothing heavy runs: a Snakemake command runs with -n added (a dry run, offline), pytest only collects, a
Python CLI must exist and list every documented --option in its --help; installs, downloads, containers and shell
scripts are checked statically (the files they name exist, scripts pass `bash -n`).
"""

from __future__ import annotations

import functools
import importlib.util
import itertools
import os
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.workflow  # runs Snakemake (dry runs, the report)

Argv = tuple[str, ...]
SHELL_LANGS = {"", "bash", "sh", "shell", "console"}
# An inline code span is a command when it starts with one of these and has arguments.
PROGRAM = r"(\.venv/bin/)?(python3?|pip3?|pytest|snakemake|ruff|bash|sh|docker|podman|hf|uv|git|make|curl|wget)|\./\S+"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


class Command(NamedTuple):
    doc: str  # the markdown file, relative to the repository
    line: int
    argv: Argv

    @property
    def id(self) -> str:
        text = shlex.join(self.argv)
        return f"{self.doc}:{self.line}:{text if len(text) <= 80 else text[:77] + '...'}"


# ------------------------------------------------------------------------------------------------ extraction


def split_commands(line: str) -> list[Argv]:
    """The commands of one shell line (without leading VAR=value assignments), then those of its $(...) and sh -c."""
    inner = re.findall(r"\$\(([^()]*)\)", line)
    line = re.sub(r"\$\([^()]*\)", "$(...)", line)
    line = re.sub(r"<([^<>]+)>", lambda m: "<" + re.sub(r"\W+", "_", m[1]) + ">", line)  # <a placeholder>: one word
    lexer = shlex.shlex(line, posix=True, punctuation_chars="&|;")
    lexer.whitespace_split = True
    commands: list[Argv] = []
    words: list[str] = []
    for token in [*lexer, ";"]:
        if token not in ("&&", "||", ";", "|"):
            words.append(token)
            continue
        while words and re.fullmatch(r"\w+=\S*", words[0]):
            words.pop(0)
        if words:
            program = re.sub(r"^\.venv/bin/", "", words[0])
            commands.append(("python" if program == "python3" else program, *words[1:]))
        words = []
    for argv in commands:
        inner += [argv[i + 1] for i in range(1, len(argv) - 1) if argv[i] == "-c" and argv[i - 1] in ("sh", "bash")]
    return commands + [argv for text in inner for argv in split_commands(text)]


def shell_lines(block: list[str]) -> list[tuple[int, str]]:
    """(offset, text) of each command line of a shell block: continuations joined, comments and blanks dropped."""
    prompted = any(line.lstrip().startswith("$ ") for line in block)
    lines, i = [], 0
    while i < len(block):
        start, text = i, block[i].strip()
        while text.endswith("\\") and i + 1 < len(block):
            i += 1
            text = text[:-1] + " " + block[i].strip()
        i += 1
        if prompted and not text.startswith("$ "):
            continue  # output of a prompted command
        text = text.removeprefix("$ ")
        if text and not text.startswith("#"):
            lines.append((start, text))
    return lines


def extract(text: str, doc: str) -> list[Command]:
    """Every command of a markdown text, in document order."""
    lines = text.splitlines()
    prose = list(lines)  # the text with fenced blocks blanked (line numbers kept), for the inline spans
    commands: list[Command] = []
    i = 0
    while i < len(lines):
        fence = re.match(r"\s*(`{3,}|~{3,})\s*(\w*)", lines[i])
        if not fence:
            i += 1
            continue
        end = next((j for j in range(i + 1, len(lines)) if lines[j].strip().startswith(fence[1])), len(lines))
        if fence[2].lower() in SHELL_LANGS:
            for offset, line in shell_lines(lines[i + 1 : end]):
                commands += [Command(doc, i + 2 + offset, argv) for argv in split_commands(line)]
        prose[i : end + 1] = [""] * len(prose[i : end + 1])
        i = end + 1
    body = "\n".join(prose)
    for span in re.finditer(r"(?<!`)`([^`]+)`(?!`)", body):
        words = span[1].split()
        if len(words) > 1 and "\n\n" not in span[1] and re.fullmatch(PROGRAM, words[0]):
            line = body.count("\n", 0, span.start()) + 1
            commands += [Command(doc, line, argv) for argv in split_commands(" ".join(words))]
    return sorted(commands, key=lambda c: c.line)


DOCS = [REPO / "README.md", *sorted(REPO.glob("*/README.md")), *sorted(REPO.glob("docs/**/*.md"))]
COMMANDS = [
    cmd
    for path in DOCS
    if not path.relative_to(REPO).parts[0].startswith(".")
    for cmd in extract(path.read_text(encoding="utf-8"), str(path.relative_to(REPO)))
]


# ------------------------------------------------------------------------------------------------ checks


@functools.cache
def run(*argv: str) -> subprocess.CompletedProcess[str]:
    """Runs argv in the repository root, offline; an identical run is done once."""
    return subprocess.run(argv, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=600)


def snakemake(*args: str) -> subprocess.CompletedProcess[str]:
    return run(sys.executable, "-m", "snakemake", *args)


def assert_ok(res: subprocess.CompletedProcess[str]) -> None:
    assert res.returncode == 0, f"exit {res.returncode}: {shlex.join(res.args)}\n{(res.stdout + res.stderr)[-3000:]}"


def assert_options_in_help(argv: Argv, help_cmd: Argv) -> None:
    """Every --option of argv (`[--opt X]` of a synopsis included) appears in the output of help_cmd."""
    options = [a.strip("[]").split("=")[0] for a in argv if a.strip("[]").startswith("--")]
    if options:
        res = run(*help_cmd)
        assert_ok(res)
        unknown = [o for o in options if not re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", res.stdout)]
        assert not unknown, f"options not in `{shlex.join(help_cmd)}`: {unknown}"


def check_dry_run(argv: Argv) -> None:
    assert_ok(snakemake("-n", *argv[1:]))


def check_report(argv: Argv) -> None:
    """Built into a temporary file when results/<study>/manifest.json (a finished run) exists."""
    i = argv.index("--report") + 1
    study = argv[i].split("/")[1] if argv[i].startswith("results/") else "default"
    if not (REPO / "results" / study / "manifest.json").is_file():
        pytest.skip(f"results/{study}/manifest.json is absent: the report is made after a run")
    with tempfile.TemporaryDirectory() as tmp:
        assert_ok(snakemake(*argv[1:i], f"{tmp}/report.html", *argv[i + 1 :]))
        assert Path(tmp, "report.html").stat().st_size > 0


def check_snakemake_options(argv: Argv) -> None:
    assert_options_in_help(argv, (sys.executable, "-m", "snakemake", "--help"))


def check_pytest(argv: Argv) -> None:
    args = argv[3:] if argv[0] == "python" else argv[1:]
    assert_ok(run(sys.executable, "-m", "pytest", "--collect-only", "-q", *args))


def check_as_written(argv: Argv) -> None:
    assert_ok(run(*argv))


def check_python_cli(argv: Argv) -> None:
    """`python -m MODULE ...` or `python SCRIPT ...`: it exists, and its --help lists every documented --option."""
    if argv[1] == "-m":
        assert importlib.util.find_spec(argv[2]), f"no module {argv[2]}"
        target, args = argv[1:3], argv[3:]
    else:
        assert (REPO / argv[1]).is_file(), f"{argv[1]} does not exist"
        target, args = argv[1:2], argv[2:]
    assert_options_in_help(args, (sys.executable, *target, "--help"))


def values(argv: Argv, *flags: str) -> list[str]:
    """The words that follow any of these flags."""
    return [value for flag, value in itertools.pairwise(argv) if flag in flags]


def check_pip_install(argv: Argv) -> None:
    check_files(argv)
    assert_options_in_help(argv, (sys.executable, "-m", "pip", "install", "--help"))


def check_bash_script(argv: Argv) -> None:
    assert (REPO / argv[1]).is_file(), f"{argv[1]} does not exist"
    assert_ok(run("bash", "-n", argv[1]))


def check_files(argv: Argv) -> None:
    """-r files exist; `docker build`: the context and its Dockerfile exist, every --build-arg is an ARG of it."""
    for path in values(argv, "-r", "--requirement"):
        assert (REPO / path).is_file(), f"{path} does not exist"
    if argv[1] == "build" and len(argv) > 2:
        context = REPO / argv[-1]
        dockerfile = REPO / values(argv, "-f", "--file")[0] if values(argv, "-f", "--file") else context / "Dockerfile"
        assert context.is_dir() and dockerfile.is_file(), f"no build context {argv[-1]} or no {dockerfile}"
        declared = re.findall(r"^ARG\s+(\w+)", dockerfile.read_text(), re.M)
        for arg in values(argv, "--build-arg"):
            assert arg.split("=")[0] in declared, f"--build-arg {arg}: no such ARG in {dockerfile}"


# The first rule whose pattern matches the start of the command (words joined by spaces) checks it.
RULES: list[tuple[str, Callable[[Argv], None]]] = [
    (r"(python -m )?pip3? install\b", check_pip_install),  # -r files exist, options in `pip install --help`
    (r"snakemake .*--report\b", check_report),  # built into a temporary file after a finished run, else skipped
    (r"snakemake .*--unlock\b", check_snakemake_options),  # not run (a concurrent run's lock): in `snakemake --help`
    (r"snakemake\b", check_dry_run),  # the same argv with -n, exit 0
    (r"(python -m )?pytest\b", check_pytest),  # --collect-only with the same options
    (r"ruff (check|format --check)\b", check_as_written),
    (r"python (-m \S+|\S+\.py)\b", check_python_cli),  # exists, documented --options in its --help
    (r"(ba)?sh \S+\.sh\b", check_bash_script),  # exists, `bash -n` passes
    (r"(docker|podman|hf|uv|git) ", check_files),  # not run: named files exist, --build-arg is an ARG
]


def rule_for(argv: Argv) -> Callable[[Argv], None] | None:
    return next((check for pattern, check in RULES if re.match(pattern, " ".join(argv))), None)


# ------------------------------------------------------------------------------------------------ tests


@pytest.mark.parametrize("cmd", COMMANDS, ids=[c.id for c in COMMANDS])
def test_documented_command(cmd: Command) -> None:
    check = rule_for(cmd.argv)
    assert check, f"unclassified command: add a rule: {shlex.join(cmd.argv)}"
    check(cmd.argv)


def test_every_command_has_a_rule() -> None:
    missing = [f"{c.doc}:{c.line}: {shlex.join(c.argv)}" for c in COMMANDS if not rule_for(c.argv)]
    assert not missing, "unclassified command: add a rule:\n" + "\n".join(missing)
    assert any(c.doc == "README.md" and c.argv == ("snakemake", "--cores", "all") for c in COMMANDS)


def test_extraction() -> None:
    md = """Run `snakemake --cores 1 verify`, see `.ci/run` and `results/`.

```bash
# a comment
python3 -m venv .venv && .venv/bin/pip install -r a.txt ; echo hi | cat
snakemake --cores all \\
    --configfile a.yaml  # a trailing comment
docker build --build-arg C=$(git rev-parse HEAD) .
docker run img sh -c 'snakemake -n && true'
```

```console
$ ruff check
All checks passed!
```
"""
    assert [(c.line, shlex.join(c.argv)) for c in extract(md, "x.md")] == [
        (1, "snakemake --cores 1 verify"),
        (5, "python -m venv .venv"),
        (5, "pip install -r a.txt"),
        (5, "echo hi"),
        (5, "cat"),
        (6, "snakemake --cores all --configfile a.yaml"),
        (8, "docker build --build-arg 'C=$(...)' ."),
        (8, "git rev-parse HEAD"),
        (9, "docker run img sh -c 'snakemake -n && true'"),
        (9, "snakemake -n"),
        (9, "true"),
        (13, "ruff check"),
    ]


def test_a_target_after_configfile_fails_the_dry_run() -> None:
    """The bug this file was written for: --configfile takes every following word, so a target after it is lost."""
    target, configfile = "results/qwen/checkpoints/converted/qwen2.5-coder-0.5b", "config/studies/qwen.yaml"
    assert_ok(snakemake("-n", "--cores", "1", target, "--configfile", configfile))  # the documented form
    assert snakemake("-n", "--cores", "1", "--configfile", configfile, target).returncode != 0
