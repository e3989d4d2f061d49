"""The results layout (``entity_tracking.layout``): one home for every path under ``results/<study>/``."""

import re

import pytest

from entity_tracking.layout import FILES, dcm_result_path, desiderata_file, fill, relative, result
from tests.conftest import REPO
from tests.planned_params import plan


def test_fill_leaves_unfilled_fields_as_wildcards_and_refuses_unknown_ones():
    path = result("results/s", "dcm", group="value_fetcher")
    assert path == "results/s/dcm/{circuit}/value_fetcher/{desideratum}.json"
    assert relative("cmap", pair="a__b") == "cmap/a__b.json"
    with pytest.raises(KeyError, match="no field \\['modle'\\]"):
        fill(FILES["eval"], modle="m")


def test_the_folder_helpers_agree_with_the_files_the_rules_name():
    root = "results/s"
    assert str(dcm_result_path(result(root, "dcm_dir"), "c", "g", "d")) == result(
        root, "dcm", circuit="c", group="g", desideratum="d"
    )
    assert str(desiderata_file(result(root, "desiderata_dir"), "d", "dcm_train")) == result(
        root, "desiderata", desideratum="d", split="dcm_train"
    )


def test_every_result_file_a_planned_job_reads_or_writes_is_one_of_the_layouts_files():
    """Forced plans of the three studies (nothing runs): every input and output under results/<study>/ matches a
    template of ``FILES``, so no rule names a result path of its own; and every template is used."""
    patterns = {name: re.compile(re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(t)) + "$") for name, t in FILES.items()}
    used = set()
    for study in ("default", "qwen", "paper"):
        files = plan(REPO, {"study": study, "device": "cpu"}, lambda job: [*map(str, job.input), *map(str, job.output)])
        prefix = f"results/{study}/"
        paths = {f[len(prefix) :] for job_files in files.values() for f in job_files if f.startswith(prefix)}
        assert len(paths) > 50
        assert [p for p in sorted(paths) if not any(rx.match(p) for rx in patterns.values())] == []
        used |= {name for name, rx in patterns.items() if any(rx.match(p) for p in paths)}
    assert set(FILES) - used == {"records", "dcm_dir", "desiderata_dir"}  # folders and the records: no job file


def test_no_rule_or_module_spells_a_results_path():
    """Paths under results/ come from the layout: the rule files and the package's code name none themselves."""
    sources = [REPO / "Snakefile", *sorted((REPO / "rules").glob("*.smk"))]
    sources += [p for p in sorted((REPO / "entity_tracking").rglob("*.py")) if p.name != "layout.py"]
    literal = re.compile(r"""f["']results/|Path\(["']results["']\)|["']results["'] /|\{RESULTS\}/""")
    found = [f"{p.relative_to(REPO)}:{i}" for p in sources for i, line in enumerate(p.read_text().splitlines(), 1)
             if literal.search(line.split("#")[0]) and '"""' not in line and "``" not in line]  # fmt: skip
    assert found == []
