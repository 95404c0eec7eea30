"""One name for the served model (config.json's model_name) and the state apart from config.json's folder."""

import json

import pytest

from modelops.core.config import STATE_ENV, load_config
from modelops.core.errors import ConfigError
from modelops.core.model_name import served_model_name
from tests.conftest import write_config


def test_config_json_names_the_model_and_an_agreeing_model_name_changes_nothing(tmp_path):
    config = load_config(write_config(tmp_path, model_name="penguins"))
    assert served_model_name(config, {}) == "penguins"
    assert served_model_name(config, {"MODEL_NAME": ""}) == "penguins"  # compose passes it through unset
    assert served_model_name(config, {"MODEL_NAME": "penguins"}) == "penguins"


def test_a_model_name_that_disagrees_is_a_config_error_naming_both(tmp_path):
    config = load_config(write_config(tmp_path, model_name="penguins"))
    with pytest.raises(ConfigError) as err:
        served_model_name(config, {"MODEL_NAME": "simple_classifier"})
    assert "MODEL_NAME='simple_classifier'" in str(err.value) and "'penguins'" in str(err.value)
    assert str(tmp_path / "config.json") in str(err.value)


def test_the_state_dir_holds_the_state_and_train_module_stays_beside_config_json(tmp_path, monkeypatch):
    """Compose: config.json's folder is mounted read-only at /config, the state lives in /state."""
    folder, state = tmp_path / "config", tmp_path / "state"
    folder.mkdir()
    path = write_config(folder, train={"module": "my_model.py"})
    monkeypatch.setenv(STATE_ENV, str(state))
    config = load_config(path)
    assert (config.models_dir, config.data_dir, config.history_path) == (
        state / "models", state / "data", state / "runs" / "history.jsonl")
    assert config.train_module_path == folder / "my_model.py"
    monkeypatch.delenv(STATE_ENV)
    assert load_config(path).models_dir == folder / "models"
    assert json.loads(load_config(path).source_text)["train"]["module"] == "my_model.py"
