"""Bad config.json stops with a message naming the key (exit 2); good ones load typed."""

import json

import pytest

from harness import REPO
from harness.project import write_config
from modelops.core.config import load_config
from modelops.core.errors import ConfigError
from tests.conftest import run_cli


def test_repo_config_keeps_the_product_keys():
    config = load_config(REPO / "config.json")
    assert config.model_name == "simple_classifier"
    assert config.gate.min_accuracy_percent == 97.0
    assert (config.train.epochs, config.train.batch_size, config.train.learning_rate) == (20, 32, 0.01)
    assert config.schedule.cron == "0 2 * * 0"
    assert config.schedule.max_run_seconds == 14400  # 4 h: a weekly run takes minutes
    assert config.rollout.mode == "direct", "direct stays the default: the product README holds"


@pytest.mark.parametrize(
    ("sections", "expected"),
    [
        ({"gate": {"min_acuracy_percent": 90}}, "unknown key 'gate.min_acuracy_percent' (did you mean 'gate.min_accuracy_percent'?)"),
        ({"train": {"epochs": "20"}}, "'train.epochs' must be an integer"),
        ({"gate": {"min_accuracy_percent": 120}}, "'gate.min_accuracy_percent' must be between 0.0 and 100.0"),
        ({"train": {"batch_size": 0}}, "'train.batch_size' must be between 1"),
        ({"train": {"epochs": True}}, "'train.epochs' must be an integer"),
        ({"schedule": {"cron": "every sunday"}}, "'schedule.cron' is not a valid cron expression"),
        ({"verify": {"on_unreachable": "ignore"}}, "'verify.on_unreachable' must be one of warn, fail"),
        ({"schedule": {"max_run_seconds": 0}}, "'schedule.max_run_seconds' must be between 1.0 and 604800.0"),
        ({"schedule": {"max_run_seconds": "4h"}}, "'schedule.max_run_seconds' must be a number"),
        ({"gate": 97}, "'gate' must be a JSON object"),
        ({"gate": {"significance": 0}}, "'gate.significance' must be between 1e-09 and 1.0"),
        ({"gate": {"require_improvment": True}}, "(did you mean 'gate.require_improvement'?)"),
        ({"gate": {"slices": {"feature": "x1"}}}, "'gate.slices' must be a list"),
        ({"gate": {"slices": [{"feature": "x_1"}]}}, "'gate.slices[0].feature' must name a feature, got \"x_1\" "
                                                    "(did you mean 'x1'?); features: x1, x2"),
        ({"gate": {"slices": [{"feature": "x1", "edge": [0]}]}}, "unknown key 'gate.slices[0].edge' (did you mean "
                                                                  "'gate.slices[0].edges'?)"),
        ({"gate": {"slices": [{"feature": "x1", "edges": [1, 0]}]}}, "'gate.slices[0].edges' must be strictly "
                                                                     "increasing"),
        ({"gate": {"slices": [{"feature": "x1", "edges": ["0"]}]}}, "'gate.slices[0].edges[0]' must be a number"),
        ({"gate": {"min_slice_rows": 0}}, "'gate.min_slice_rows' must be at least 1"),
        ({"gate": {"slices": [{"feature": "x2"}]}}, "'gate.slices[0].edges' is needed for the number feature 'x2'"),
        ({"reproduce": {"tolerance_percent": -1}}, "'reproduce.tolerance_percent' must be between 0.0 and 100.0"),
        ({"model_name": "a/b"}, "'model_name' must be non-empty"),
        ({"data": {"window": {"max_batch": 4}}}, "unknown key 'data.window.max_batch' (did you mean 'data.window.max_batches'?)"),
        ({"data": {"window": {"max_rows": 10}}}, "'data.window.max_rows' must be at least 'data.max_batch_rows'"),
        ({"data": {"window": {"max_batches": 0}}}, "'data.window.max_batches' must be at least 1"),
        ({"data": {"max_batch_bytes": 0}}, "'data.max_batch_bytes' must be at least 1"),
        ({"data": {"settle_seconds": -1}}, "'data.settle_seconds' must be between 0.0 and 3600.0"),
        ({"data": {"window": 52}}, "'data.window' must be a JSON object"),
        ({"rollout": {"mode": "blue-green"}}, "'rollout.mode' must be one of direct, shadow, canary"),
        ({"rollout": {"canary_pct": 5}}, "unknown key 'rollout.canary_pct' (did you mean 'rollout.canary_percent'?)"),
        ({"rollout": {"shadow_fraction": 1.5}}, "'rollout.shadow_fraction' must be between 0.0 and 1.0"),
        ({"rollout": {"on_timeout": "wait"}}, "'rollout.on_timeout' must be one of promote, abort"),
        ({"rollout": {"min_seconds": 600, "max_seconds": 60}}, "'rollout.min_seconds' must be less than"),
        ({"rollout": {"mode": "canary", "canary_percent": 0}}, "'rollout.canary_percent' must be above 0"),
        ({"rollout": {"max_p99_latency_ratio": 0.5}}, "'rollout.max_p99_latency_ratio' must be between 1.0"),
    ],
)
def test_bad_values_name_the_key(tmp_path, sections, expected):
    with pytest.raises(ConfigError) as err:
        load_config(write_config(tmp_path, **sections))
    assert expected in str(err.value)


def test_invalid_json_says_where(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"model_name": "m",\n "gate": {')
    with pytest.raises(ConfigError, match="not valid JSON.*line 2"):
        load_config(path)


def test_config_is_frozen(project):
    with pytest.raises(AttributeError):
        project.gate.min_accuracy_percent = 1.0


@pytest.mark.parametrize("command", [[], ["status"]])
def test_cli_exits_2_naming_the_key(tmp_path, command):
    path = write_config(tmp_path, train={"epochs": "twenty"})
    result = run_cli("--config", str(path), *command, timeout=60)
    assert result.returncode == 2
    assert "train.epochs" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "models").exists(), "a bad config must stop before touching any state"


def test_missing_config_file_is_a_usage_error(tmp_path):
    result = run_cli("--config", str(tmp_path / "nope.json"), "status", timeout=60)
    assert result.returncode == 2
    assert "config file not found" in result.stderr


def test_defaults_fill_missing_sections(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_name": "m"}))
    config = load_config(path)
    assert config.gate.min_accuracy_percent == 97.0
    assert config.models_dir == tmp_path / "models"


def test_gate_slices_load_typed_and_the_file_text_is_kept_for_lineage(tmp_path):
    path = write_config(tmp_path, gate={"slices": [{"feature": "x1", "edges": [0, 1.5]}, {"feature": "x2", "edges": [1]}],
                                        "significance": 0.01, "require_improvement": True})
    config = load_config(path)
    assert [(s.feature, s.edges) for s in config.gate.slices] == [("x1", (0.0, 1.5)), ("x2", (1.0,))]
    assert (config.gate.significance, config.gate.require_improvement, config.gate.min_slice_rows) == (0.01, True, 50)
    assert config.source_text == path.read_text()


DECLARED = {"features": {"size": {"type": "float"}, "island": {"type": "category"}},
            "label": {"column": "kind", "classes": ["a", "b", "c"]}}


def test_gate_slices_name_the_declared_features_a_category_by_value(tmp_path):
    config = load_config(write_config(tmp_path, **DECLARED, gate={"slices": [{"feature": "island"}]}))
    assert config.gate.slices[0].feature == "island"
    for spec, expected in [
        ({"feature": "x1", "edges": [0]}, "got \"x1\"; features: size, island"),
        ({"feature": "islnd"}, "(did you mean 'island'?)"),
        ({"feature": "island", "edges": [1]}, "'gate.slices[0].edges' is only for number features"),
    ]:
        with pytest.raises(ConfigError) as err:
            load_config(write_config(tmp_path, **DECLARED, gate={"slices": [spec]}))
        assert expected in str(err.value)


def test_trusted_proxies_must_be_addresses_or_networks(tmp_path):
    """Issue 33: ``rollout.trusted_proxies`` (default none) decides whose X-Client-Id picks the canary."""
    raw = json.loads((REPO / "config.json").read_text())
    path = tmp_path / "config.json"
    path.write_text(json.dumps(raw))
    assert load_config(path).rollout.trusted_proxies == ()
    raw["rollout"]["trusted_proxies"] = ["10.0.0.0/8", "192.0.2.1", "frontend-proxy"]
    path.write_text(json.dumps(raw))
    with pytest.raises(ConfigError, match=r"'rollout.trusted_proxies' must list IP addresses.*frontend-proxy"):
        load_config(path)
