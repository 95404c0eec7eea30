"""Issue 33 finding 4: a serving URL is never printed with its credentials."""

from __future__ import annotations

import pytest

from modelops.core.errors import ConfigError, ServingUnavailable
from modelops.core.tfserving_client import ServingClient, base_url_of
from modelops.core.urls import without_credentials


@pytest.mark.parametrize(("url", "shown"), [
    ("https://user:token@serving.example:8501", "https://***@serving.example:8501"),
    ("http://token@serving.example/base", "http://***@serving.example/base"),
    ("user:pa@ss@serving:8501", "***@serving:8501"),
    ("http://tfserving:8501", "http://tfserving:8501"),
    ("localhost:8501", "localhost:8501"),
])
def test_credentials_are_replaced_and_everything_else_kept(url, shown):
    assert without_credentials(url) == shown


class Refused:
    def request(self, *args, **kwargs):
        raise ConnectionRefusedError


def test_the_clients_messages_and_a_bad_tf_host_never_show_the_password():
    client = ServingClient("https://ops:s3cret@tfserving.example:8501", "m", session=Refused())
    with pytest.raises(ServingUnavailable) as caught:
        client.predict([[1, 2]])
    assert "https://***@tfserving.example:8501" in str(caught.value) and "s3cret" not in str(caught.value)
    with pytest.raises(ConfigError) as bad:
        base_url_of("ftp://ops:s3cret@tfserving.example:8501")
    assert "s3cret" not in str(bad.value) and "***@tfserving.example" in str(bad.value)
