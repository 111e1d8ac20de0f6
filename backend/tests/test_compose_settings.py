"""docker-compose.yml passes every setting of the settings class to the backend and generator."""
from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from analytics.settings import Settings

REPO = Path(__file__).resolve().parents[2]
# Compose sets these itself: where the backend listens, the one proxy in front, Redis with its ACL user.
COMPOSE_OWNED = {"HOST": "0.0.0.0", "PORT": "5000", "TRUSTED_PROXIES": "1"}


def setting_names() -> set[str]:
    fields = getattr(Settings, "model_fields", None)  # pydantic-settings
    return set(fields) if fields is not None else {f.name for f in dataclasses.fields(Settings)}


def compose_config(tmp_path: Path, env: dict[str, str]) -> dict:
    if shutil.which("docker-compose") is None:
        pytest.fail("docker-compose is missing (make install)")
    secrets = tmp_path / "secrets"
    subprocess.run([REPO / "scripts" / "compose-secrets.sh", secrets], check=True, capture_output=True)
    env_file = tmp_path / "settings.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    out = subprocess.run(["docker-compose", "--env-file", env_file, "-f", REPO / "docker-compose.yml", "config"],
                         check=True, capture_output=True, text=True,
                         env={"PATH": "/usr/local/bin:/usr/bin:/bin", "PULSE_SECRETS_DIR": str(secrets)})
    return yaml.safe_load(out.stdout)["services"]


@pytest.mark.parametrize("service", ["backend", "generator"])
def test_compose_passes_every_setting(tmp_path, service):
    names = setting_names() - {"REDIS_URL"}
    marked = {name: f"marker-{name.lower()}" for name in names}
    env = compose_config(tmp_path, marked)[service]["environment"]
    for name in sorted(names):
        passed = env.get(name, env.get(f"{name}_FILE"))
        assert passed is not None, f"docker-compose.yml does not pass {name} to {service}"
        assert passed == COMPOSE_OWNED.get(name, marked[name]), f"{name} reaches {service} as {passed!r}"


@pytest.mark.parametrize("service", ["backend", "generator"])
def test_compose_gives_redis_url_with_acl_user(tmp_path, service):
    env = compose_config(tmp_path, {})[service]["environment"]
    assert env["REDIS_URL"].startswith(f"redis://{service}:"), "the service's own ACL user"
