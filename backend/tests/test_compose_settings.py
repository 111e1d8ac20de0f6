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
# Secure by default: the backend reads these from the secrets scripts/compose-secrets.sh makes.
# The generator neither checks keys nor serves reads: it gets none of them.
BACKEND_SECRETS = {"API_KEYS": "/run/secrets/api_keys", "JWT_SECRET": "/run/secrets/jwt_secret",
                   "METRICS_TOKEN": "/run/secrets/metrics_token"}


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
    names = setting_names() - {"REDIS_URL", "REDIS_PASSWORD"} - set(BACKEND_SECRETS)
    marked = {name: f"marker-{name.lower()}" for name in names}
    env = compose_config(tmp_path, marked)[service]["environment"]
    for name in sorted(names):
        passed = env.get(name)
        assert passed is not None, f"docker-compose.yml does not pass {name} to {service}"
        assert passed == COMPOSE_OWNED.get(name, marked[name]), f"{name} reaches {service} as {passed!r}"


def test_compose_turns_access_control_on_from_secret_files(tmp_path):
    services = compose_config(tmp_path, {})
    backend = services["backend"]
    mounted = {s["source"] for s in backend["secrets"]}
    for name, path in BACKEND_SECRETS.items():
        assert backend["environment"][f"{name}_FILE"] == path
        assert path.rsplit("/", 1)[1] in mounted
        assert name not in backend["environment"], f"{name} given twice (the backend refuses that)"
    generator = services["generator"]["environment"]
    assert not any(name in generator or f"{name}_FILE" in generator for name in BACKEND_SECRETS)


def test_compose_secrets_hold_a_producer_key_and_its_digest(tmp_path):
    import hashlib

    compose_config(tmp_path, {})
    secrets = tmp_path / "secrets"
    key = (secrets / "producer_key").read_text()
    assert len(key) == 64 and (secrets / "api_keys").read_text() == hashlib.sha256(key.encode()).hexdigest()
    for name in ("jwt_secret", "metrics_token", "redis_backend_password", "redis_generator_password"):
        assert len((secrets / name).read_text()) == 64  # MIN_SECRET_BYTES and more


@pytest.mark.parametrize("service", ["backend", "generator"])
def test_compose_gives_redis_its_acl_user_and_the_password_as_a_secret(tmp_path, service):
    services = compose_config(tmp_path, {})
    env = services[service]["environment"]
    assert env["REDIS_URL"] == f"redis://{service}@redis:6379/0", "the service's own ACL user, no password in the URL"
    assert env["REDIS_PASSWORD_FILE"] == f"/run/secrets/redis_{service}_password"
    assert f"redis_{service}_password" in {s["source"] for s in services[service]["secrets"]}
    assert "REDIS_PASSWORD" not in env


def test_compose_gives_nginx_the_bounds_it_applies_in_front_of_the_backend(tmp_path):
    """nginx caps bodies at INGEST_MAX_BYTES and requests per client address at
    MAX_CONNECTIONS_PER_ADDRESS (frontend/docker/entrypoint.sh): the same values as the backend's,
    from the same settings file; unset, both get empty, which each reads as its own default."""
    values = {"INGEST_MAX_BYTES": "2048", "MAX_CONNECTIONS_PER_ADDRESS": "32"}
    services = compose_config(tmp_path, values)
    for name, value in values.items():
        assert services["frontend"]["environment"][name] == value == services["backend"]["environment"][name]
    defaults = compose_config(tmp_path / "defaults", {})["frontend"]["environment"]
    assert all(defaults[name] == "" for name in values)
