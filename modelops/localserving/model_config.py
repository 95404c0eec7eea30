"""``--model_config_file``: TF Serving's ``ModelServerConfig`` text proto -> the models to serve.

Parsed with the ``tensorflow_serving.config`` protos themselves, so a file the stock server reads
means the same here, and one it refuses is refused here with the same complaint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from modelops.core.errors import ConfigError


@dataclass(frozen=True)
class VersionPolicy:
    """``model_version_policy``: ``latest`` keeps the ``count`` highest versions on disk, ``all`` every
    one, ``specific`` the listed ones that exist."""

    kind: str = "latest"
    count: int = 1
    versions: frozenset[int] = frozenset()

    def aspired(self, on_disk: set[int]) -> set[int]:
        if self.kind == "all":
            return set(on_disk)
        if self.kind == "specific":
            return on_disk & self.versions
        return set(sorted(on_disk, reverse=True)[: max(self.count, 1)])  # TF Serving: below 1 means 1


LATEST = VersionPolicy()  # TF Serving's default: the highest version only

@dataclass(frozen=True)
class ModelSpec:
    """One ``config { ... }`` block."""

    name: str
    base_path: Path
    policy: VersionPolicy = LATEST
    labels: dict[str, int] = field(default_factory=dict)


def parse(text: str, source: str) -> list[ModelSpec]:
    """The models a ``ModelServerConfig`` text lists; ConfigError says what is wrong and where."""
    try:
        config = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    except text_format.ParseError as e:
        raise ConfigError(f"{source}: not a ModelServerConfig text proto: {e}") from None
    return specs_of(config, source)


def specs_of(config: model_server_config_pb2.ModelServerConfig, source: str) -> list[ModelSpec]:
    """The models a parsed ``ModelServerConfig`` lists (from the file, or a gRPC ReloadConfigRequest)."""
    if config.WhichOneof("config") == "custom_model_config":
        raise ConfigError(f"{source}: custom_model_config is not supported; use model_config_list")
    specs: list[ModelSpec] = []
    for model in config.model_config_list.config:
        if any(spec.name == model.name for spec in specs):
            raise ConfigError(f"{source}: Illegal to list model {model.name} multiple times in config list")
        if not model.name or not model.base_path:
            raise ConfigError(f"{source}: every config needs a name and a base_path (got name {model.name!r})")
        if model.model_platform != "tensorflow":
            if not model.model_platform:
                raise ConfigError(
                    f"{source}: Illegal setting neither ModelServerConfig::model_type (deprecated) nor "
                    f"ModelServerConfig::model_platform, model name is {model.name}"
                )
            raise ConfigError(f"{source}: model {model.name}: model_platform must be 'tensorflow'")
        specs.append(ModelSpec(model.name, Path(model.base_path), _policy(model.model_version_policy),
                               dict(model.version_labels)))
    return specs


def read(path: Path) -> tuple[str, list[ModelSpec]]:
    """``(text, models)`` of the file at ``path``."""
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise ConfigError(f"--model_config_file: cannot read {path}: {e}") from None
    return text, parse(text, str(path))


def _policy(policy) -> VersionPolicy:
    choice = policy.WhichOneof("policy_choice")
    if choice == "all":
        return VersionPolicy("all")
    if choice == "specific":
        return VersionPolicy("specific", versions=frozenset(policy.specific.versions))
    return VersionPolicy("latest", count=policy.latest.num_versions if choice == "latest" else 1)
