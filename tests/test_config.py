"""[tool.nnlint]: every key validated, unknown ones named, thresholds reach the rules."""

from __future__ import annotations

import pytest

from nnlint.config import Config, config_from_table, find_config_file, load_config
from nnlint.errors import ConfigError
from nnlint.findings import Severity


def test_all_keys_parse():
    config = config_from_table(
        {
            "select": ["NN1", "NN003"],
            "ignore": "NN106",
            "fail-on": "error",
            "per-module-ignores": {"encoder.*": ["NN103"]},
            "thresholds": {"NN105": {"min-batch-size": 8}, "batch-too-large": {"max-batch-size": 128}},
            "static": True,
            "device": "cuda:1",
            "input-shape": "8,3,32,32",
            "batch-size": 64,
        }
    )
    normalization = {"NN101", "NN102", "NN103", "NN104", "NN105", "NN107", "NN108", "NN109", "NN110", "NN111"}
    assert config.enabled_codes == {"NN002", "NN003"} | normalization
    assert config.fail_on is Severity.ERROR
    assert config.ignored_for_module("NN103", "encoder.layers.0") and not config.ignored_for_module("NN103", "decoder.0")
    assert config.thresholds == {"NN105": {"min-batch-size": 8.0}, "NN106": {"max-batch-size": 128.0}}
    assert (config.static, config.device, config.input_shape, config.batch_size) == (True, "cuda:1", (8, 3, 32, 32), 64)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"selcet": ["NN1"]}, "unknown key 'selcet'"),
        ({"select": ["NN9X"]}, "unknown rule code or prefix: 'NN9X'"),
        ({"fail-on": "fatal"}, "fail-on: expected one of error, warning, info"),
        ({"thresholds": {"NN105": {"minimum": 4}}}, "NN105 has no threshold 'minimum'"),
        ({"thresholds": {"NN777": {"x": 1}}}, "unknown rule 'NN777'"),
        ({"thresholds": {"NN105": {"min-batch-size": "big"}}}, "expected a number"),
        ({"per-module-ignores": {"a.*": ["NN1Z"]}}, "unknown rule code or prefix: 'NN1Z'"),
        ({"batch-size": 0}, "batch-size: expected a positive integer"),
        ({"static": "yes"}, "static: expected true or false"),
        ({"device": "tpu"}, "device: expected auto, cpu or cuda"),
    ],
)
def test_bad_settings_are_errors_naming_the_key(table, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        config_from_table(table)


def test_nearest_pyproject_with_a_nnlint_table_wins(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.nnlint]\nselect = ['NN1']\n")
    inner = tmp_path / "pkg" / "models"
    inner.mkdir(parents=True)
    (tmp_path / "pkg" / "pyproject.toml").write_text("[project]\nname = 'pkg'\n")  # no [tool.nnlint]: skipped
    assert find_config_file(inner) == tmp_path / "pyproject.toml"
    assert load_config(find_config_file(inner)).select == ("NN1",)


def test_malformed_toml_is_a_config_error(tmp_path):
    path = tmp_path / "pyproject.toml"
    path.write_text("[tool.nnlint\nselect = 1\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(path)


def test_nn002_stays_on_unless_ignored_explicitly():
    assert Config(select=("NN104",)).is_enabled("NN002")
    assert not Config(ignore=("NN002",)).is_enabled("NN002")
