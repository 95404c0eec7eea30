"""Every entry point finds TF Serving by one rule: TF_HOST, else BIND_ADDRESS/TF_REST_PORT, else the default."""

import pytest

from modelops import stack
from modelops.core.tfserving_client import DEFAULT_TF_HOST, env_target, serving_address


@pytest.mark.parametrize(("environ", "expected"), [
    ({}, DEFAULT_TF_HOST),
    ({"TF_HOST": "", "BIND_ADDRESS": "", "TF_REST_PORT": ""}, DEFAULT_TF_HOST),
    ({"TF_REST_PORT": "18501"}, "http://127.0.0.1:18501"),
    ({"BIND_ADDRESS": "0.0.0.0", "TF_REST_PORT": "18501"}, "http://127.0.0.1:18501"),
    ({"BIND_ADDRESS": "10.1.2.3"}, "http://10.1.2.3:8501"),
    ({"TF_HOST": "tfserving:8501", "BIND_ADDRESS": "10.1.2.3", "TF_REST_PORT": "18501"}, "tfserving:8501"),
])
def test_the_order_is_tf_host_then_bind_and_port_then_the_default(environ, expected):
    assert serving_address(environ) == expected
    assert env_target(environ)[0] == expected


def test_the_stack_launcher_tells_its_services_the_same_address_the_rule_gives():
    env = stack.local_env({"BIND_ADDRESS": "0.0.0.0"}, {**stack.DEFAULT_PORTS, "TF_REST_PORT": 18577},
                          "m", stack.REPO_ROOT / "models")
    assert env["TF_HOST"] == serving_address({"TF_REST_PORT": "18577"}) == "http://127.0.0.1:18577"


def test_retrain_pipeline_the_scheduler_and_the_frontend_ask_the_same_address(monkeypatch, tmp_path):
    """With only the stack's variables set (moved ports), no entry point falls back to localhost:8501."""
    from harness.project import write_config
    from modelops.core.config import load_config
    from modelops.trainer.retrain import verify
    from modelops.web import settings

    monkeypatch.delenv("TF_HOST", raising=False)
    monkeypatch.setenv("BIND_ADDRESS", "127.0.0.1")
    monkeypatch.setenv("TF_REST_PORT", "18999")
    path = write_config(tmp_path)
    expected = "http://127.0.0.1:18999"
    assert verify.serving_client(load_config(path)).base_url == expected  # retrain, compare, verify, scheduler
    assert settings({"MODELOPS_CONFIG": path})["TF_HOST"] == expected  # the frontend
