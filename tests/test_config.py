import shutil
from pathlib import Path

import pytest
import yaml

from entity_tracking.config import ConfigError, build_config, deep_merge, repo_path
from tests.conftest import REPO

CONFIG_DIR = REPO / "config"


def test_default_study_is_complete_and_gets_schema_defaults():
    cfg = build_config({}, CONFIG_DIR)
    assert cfg["study"] == "default" and cfg["device"] == "cpu"
    assert list(cfg["models"]) == ["organism-base", "organism-chat", "organism-arith-lora", "organism-arith-full",
                                   "organism-code", "organism-paraphrase"]  # fmt: skip
    assert cfg["dataset"]["seed"] == 20240101  # shared setting kept under the study's overrides
    assert cfg["dataset"]["splits"]["ablation"] == 100 and cfg["dataset"]["splits"]["eval"] == 72
    base = cfg["models"]["organism-base"]
    assert base["dtype"] == "float32" and base["trust_remote_code"] is False
    assert base["path"] == "{repo}/models/organisms/base"  # kept in params: a moved run plans nothing
    assert Path(repo_path(base["path"])).resolve() == REPO / "models" / "organisms" / "base"
    assert cfg["models"]["organism-arith-lora"]["finetune"]["lora_rank"] == 8


def test_paper_study_lists_the_four_models_with_revisions():
    cfg = build_config({"study": "paper"}, CONFIG_DIR)
    assert list(cfg["models"]) == ["llama-7b", "vicuna-7b", "goat-7b", "float-7b"]
    assert cfg["models"]["goat-7b"]["adapter"]["repo"] == "tiedong/goat-lora-7b"
    assert all(m["source"] == "hub" and m["revision"] for m in cfg["models"].values())
    assert cfg["dataset"]["splits"]["eval"] * 7 >= 500  # the paper evaluates on 500 records
    assert cfg == build_config(yaml.safe_load((CONFIG_DIR / "studies" / "paper.yaml").read_text()), CONFIG_DIR)


def test_paper_sizes_override_gives_a_cpu_study_the_papers_sample_sizes():
    qwen = yaml.safe_load((CONFIG_DIR / "studies" / "qwen.yaml").read_text())
    sizes = yaml.safe_load((CONFIG_DIR / "overrides" / "paper-sizes.yaml").read_text())
    small = build_config(qwen, CONFIG_DIR)
    cfg = build_config(deep_merge(qwen, {**sizes, "study": "qwen-paper-sizes"}), CONFIG_DIR)  # as Snakemake merges
    records = {split: n * 7 for split, n in cfg["dataset"]["splits"].items()}
    assert records == {
        "discovery": 301,
        "ablation": 3500,
        "eval": 504,
        "dcm_train": 1001,
        "dcm_val": 504,
        "dcm_test": 504,
    }
    assert cfg["dcm"]["additional_groups"] == ["pos_transmitter"] and small["dcm"]["additional_groups"] == []
    assert cfg["models"] == small["models"] and cfg["knockout"] == small["knockout"]
    assert cfg["dcm"]["eval_batch_size"] == small["dcm"]["eval_batch_size"] == 64  # the rest of the study kept


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (
            {"dataset": {"sedd": 1}},
            r"config key 'dataset': Additional properties are not allowed \('sedd' was unexpected",
        ),
        ({"evaluaton": {}}, "'evaluaton' was unexpected"),
        (
            {"models": {"organism-base": {"dtyp": "float32"}}},
            "config key 'models.organism-base'.*'dtyp' was unexpected",
        ),
        ({"evaluation": {"batch_size": "big"}}, "config key 'evaluation.batch_size': 'big' is not of type 'integer'"),
        ({"models": {"organism-base": {"dtype": "fp8"}}}, "config key 'models.organism-base.dtype'.*one of"),
        ({"models": {"x": {"source": "hub", "role": "base", "repo": "a/b"}}}, "'revision' is a required property"),
        (
            {"models": {"organism-chat": {"base_model": "nope"}}},
            "models.organism-chat.base_model.*'nope' is not a model",
        ),
        (
            {
                "models": {
                    "ft": {"source": "finetune", "role": "finetuned", "base_model": "organism-base", "finetune": {}}
                }
            },
            "config key 'models.ft.finetune': 'corpus' is a required property",
        ),
        (
            {"models": {"ft": {"source": "finetune", "role": "finetuned", "finetune": {"method": "qlora"}}}},
            "config key 'models.ft.finetune.method'.*one of",
        ),
        (
            {"models": {"organism-arith-lora": {"finetune": {"method": "full"}}}},
            "'models.organism-arith-lora.finetune': \\['lora_rank', 'lora_alpha'\\] apply to method lora only",
        ),
        (
            {
                "models": {
                    "ft": {
                        "source": "finetune",
                        "role": "finetuned",
                        "base_model": "organism-base",
                        "finetune": {
                            "corpus": "chat",
                            "method": "lora",
                            "steps": 1,
                            "batch_size": 1,
                            "lr": 0.1,
                            "seed": 0,
                        },
                    }
                }
            },
            "'models.ft.finetune': method lora needs \\['lora_rank', 'lora_alpha'\\]",
        ),
        ({"study": "nosuch"}, "unknown study 'nosuch'.*\\['default', 'paper', 'qwen'\\]"),
        ({"profile": "paper"}, "config key 'profile' is now called 'study'.*--config study=NAME"),
    ],
)
def test_bad_config_names_the_key_and_the_fix(override, expected):
    with pytest.raises(ConfigError, match=expected) as err:
        build_config(override, CONFIG_DIR)
    assert "Fix" in str(err.value) or "not a model" in str(err.value)


def test_repo_placeholder_stays_in_config_and_resolves_where_read(tmp_path, monkeypatch):
    custom = {"study": "mine", "models": {"m": {"source": "local", "role": "base", "path": "{repo}/models/x"}}}
    assert build_config(custom, CONFIG_DIR)["models"]["m"]["path"] == "{repo}/models/x"  # params hold no abs. path
    monkeypatch.chdir(REPO)
    assert repo_path("{repo}/models/x") == "models/x"  # an input inside the working directory: relative
    monkeypatch.chdir(tmp_path)
    assert repo_path("{repo}/models/x") == str(REPO / "models" / "x")  # outside it: absolute
    assert repo_path("rel/y") == "rel/y"


def test_custom_study_file_outside_config_studies():
    custom = {
        "study": "mine",
        "models": {"m": {"source": "builtin", "role": "base", "builtin": {"seed": 5}}},
    }
    cfg = build_config(custom, CONFIG_DIR)
    assert cfg["study"] == "mine" and list(cfg["models"]) == ["m"]
    assert cfg["dataset"]["splits"]["eval"] == 72  # shared settings apply


def test_a_study_is_picked_by_name_and_its_file_must_name_it(tmp_path):
    """--config study=paper and --configfile config/studies/paper.yaml give the same config; a study file that
    names another study stops the run."""
    paper_file = yaml.safe_load((CONFIG_DIR / "studies" / "paper.yaml").read_text())
    assert build_config({"study": "paper"}, CONFIG_DIR) == build_config(paper_file, CONFIG_DIR)
    assert build_config({}, CONFIG_DIR)["study"] == "default"
    shutil.copytree(CONFIG_DIR, tmp_path / "config")
    (tmp_path / "config" / "studies" / "mine.yaml").write_text((CONFIG_DIR / "studies" / "qwen.yaml").read_text())
    with pytest.raises(ConfigError, match=r"mine\.yaml names the study 'qwen', not 'mine'.*Fix: set study: mine"):
        build_config({"study": "mine"}, tmp_path / "config")


def test_nested_command_line_values_get_their_types():
    """Snakemake leaves every scalar of a nested --config value as text ('7'): the schema's types are restored
    where text is not allowed and the text means a value of the right type; anything else is reported."""
    cfg = build_config(
        {"dataset": {"seed": "7", "splits": {"eval": "5"}}, "circuit": {"selection": {"alpha": "0.01"}}}, CONFIG_DIR
    )
    assert cfg["dataset"]["seed"] == 7 and cfg["dataset"]["splits"]["eval"] == 5
    assert cfg["circuit"]["selection"]["alpha"] == 0.01
    assert (
        build_config({"circuit": {"path_patching": {"share_clean_runs": "false"}}}, CONFIG_DIR)["circuit"][
            "path_patching"
        ]["share_clean_runs"]
        is False
    )
    with pytest.raises(ConfigError, match=r"'dataset.seed': 'x7' is not of type 'integer'"):
        build_config({"dataset": {"seed": "x7"}}, CONFIG_DIR)
