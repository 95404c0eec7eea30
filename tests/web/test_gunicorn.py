"""The frontend under real gunicorn (the production command), several workers, real sockets."""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from harness import REPO
from harness.processes import GUNICORN, frontend
from harness.servers import free_port
from tests.web.conftest import MODEL, probability

pytestmark = pytest.mark.slow


def test_curl_form_post_and_metrics_summed_over_all_workers(fake_upstream, project, tmp_path):
    stale = tmp_path / "prometheus"
    stale.mkdir()
    (stale / "counter_999999.db").write_bytes(b"left over from a previous run")
    project.add_version(1, 98.0)
    with frontend(fake_upstream, MODEL, project.config_path, tmp_path, workers=2) as url:
        assert not (stale / "counter_999999.db").exists()  # wiped at start
        # like curl: a new connection per request, so the requests spread over the workers
        for _ in range(12):
            r = requests.post(
                f"{url}/predict",
                data="x1=1.5&x2=2.3",
                timeout=10,
                headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "*/*"},
            )
            assert r.status_code == 200
            assert r.json()["predictions"][0][0] == pytest.approx(probability(1.5, 2.3))
        with requests.Session() as keep_alive:
            for _ in range(5):
                assert keep_alive.post(f"{url}/predict", json={"instances": [[1, 2], [3, 4]]}, timeout=10).ok
            assert keep_alive.post(f"{url}/predict", json={"instances": []}, timeout=10).status_code == 400
        text = requests.get(f"{url}/metrics", timeout=10).text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    ok = (("endpoint", "/predict"), ("method", "POST"), ("status", "200"))
    assert samples[("modelops_frontend_requests_total", ok)] == 17
    assert (
        samples[("modelops_frontend_requests_total", (("endpoint", "/predict"), ("method", "POST"), ("status", "400")))]
        == 1
    )
    assert samples[("modelops_frontend_instances_predicted_total", ())] == 12 + 5 * 2
    assert samples[("modelops_frontend_served_model_version", ())] == 1
    assert samples[("modelops_frontend_served_model_accuracy_ratio", ())] == pytest.approx(0.98)


@contextlib.contextmanager
def half_requests(url: str, count: int):
    """``count`` clients that send the start of a request and then stop, holding their connection."""
    host, port = url.removeprefix("http://").split(":")
    with contextlib.ExitStack() as stack:
        for i in range(count):
            s = stack.enter_context(socket.create_connection((host, int(port)), timeout=10))
            s.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\n" if i % 2 else b"GET /heal")
        yield


def test_clients_that_send_half_a_request_and_stop_cannot_stall_the_others(fake_upstream, project, tmp_path):
    project.add_version(1, 98.0)
    with frontend(fake_upstream, MODEL, project.config_path, tmp_path, workers=2) as url, half_requests(url, 16):
        for _ in range(3):  # each a new connection, so both workers are asked
            assert requests.get(f"{url}/healthz", timeout=1).ok
            r = requests.post(f"{url}/predict", json={"instances": [[1, 2]]}, timeout=1)
            assert r.status_code == 200 and r.json()["predictions"][0][0] == pytest.approx(probability(1, 2))


def test_a_request_head_that_never_completes_is_dropped_after_the_keepalive_deadline(fake_upstream, project, tmp_path):
    """A stalled client must not hold its connection (and a worker's slot) for good."""
    project.add_version(1, 98.0)
    with frontend(fake_upstream, MODEL, project.config_path, tmp_path, workers=1) as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=60) as s:
            s.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\n")
            with contextlib.suppress(ConnectionResetError):
                assert s.recv(1024) == b"", "the frontend answered a request it never fully received"
        with requests.Session() as session:  # a kept-alive connection still carries request after request
            for _ in range(3):
                assert session.post(f"{url}/predict", json={"instances": [[1, 2]]}, timeout=5).status_code == 200


def test_a_bad_setting_stops_gunicorn_with_the_message_not_a_traceback(project, tmp_path):
    env = {**os.environ, "PORT": str(free_port()), "TF_HOST": "http://tfserving:85o1",
           "MODELOPS_CONFIG": str(project.config_path), "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus")}
    done = subprocess.run(GUNICORN, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "frontend: TF_HOST must be TF Serving's REST address" in done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_unset_the_metrics_folder_is_private_unpredictable_and_removed_at_exit(fake_upstream, project, tmp_path):
    """Issue 33: it defaulted to /tmp/modelops-web-metrics-<port>, a path another local user could make first."""
    project.add_version(1, 98.0)
    with frontend(fake_upstream, MODEL, project.config_path, tmp_path, workers=2, PROMETHEUS_MULTIPROC_DIR="") as url:
        port = url.rsplit(":", 1)[1]
        folders = list(Path(tempfile.gettempdir()).glob(f"modelops-web-metrics-{port}-*"))
        assert len(folders) == 1 and stat.S_IMODE(folders[0].stat().st_mode) == 0o700
        assert requests.post(f"{url}/predict", json={"instances": [[1, 2]]}, timeout=10).ok
        assert any(folders[0].iterdir())  # the workers' samples are there
        assert "modelops_frontend_instances_predicted_total 1.0" in requests.get(f"{url}/metrics", timeout=10).text
    assert not folders[0].exists()
