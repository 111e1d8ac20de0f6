"""Settings: every setting read from the environment and from NAME_FILE, a bad value as one line
that names it and shows no secret, Redis URLs in every form, and the process exit on a bad one."""
from __future__ import annotations

import atexit
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import redis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr

from analytics import redis_tls
from analytics.factory import connect_redis
from analytics.settings import SECRETS, Settings, SettingsError
from devstack.processes import APP, GENERATOR, backend, clean_env, get_json, redis_server
from devstack.tls import make_tls_files

DIGEST = "ab" * 32
PUBLIC_PEM = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode().strip()
# Real certificate files for the Redis TLS settings, which are checked when read.
_TLS_DIR = tempfile.mkdtemp(prefix="settings-tls-")
atexit.register(shutil.rmtree, _TLS_DIR, True)
TLS = make_tls_files(Path(_TLS_DIR))
TLS_URL = "rediss://cache.example:6380/0"

# name: (good raw value, the value it gives, a bad raw value). A new setting fails the walk
# below until it has a line here.
EXAMPLES = {
    "REDIS_URL": ("rediss://app:pw@cache.example:6380/2", "rediss://app:pw@cache.example:6380/2", "redis:/typo"),
    "REDIS_PASSWORD": ("s3cret pass", "s3cret pass", "pass\x1bword"),
    "METRICS_CHANNEL": ("events:v2", "events:v2", "has space"),
    "RECENT_KEY": ("k:recent", "k:recent", "k" * 129),
    "RECENT_MAX": ("5000", 5000, "0"),
    "HOST": ("0.0.0.0", "0.0.0.0", "  "),
    "PORT": ("8080", 8080, "http"),
    "CORS_ORIGINS": ("https://a.example, https://b.example", ["https://a.example", "https://b.example"], "ftp://x"),
    "BATCH_MS": ("5", 5, "1001"),
    "GENERATOR_RATE": ("2.5", 2.5, "nan"),
    "LOG_LEVEL": ("debug", "DEBUG", "LOUD"),
    "ASYNC_MODE": ("threading", "threading", "eventlet"),
    "WS_SERVER": ("gevent-websocket", "gevent-websocket", "tornado"),
    "CLIENT_BACKLOG": ("8", 8, "1"),
    "SEND_BUDGET": ("500", 500, "99"),
    "DIRECT_WRITES": (" Off ", False, "maybe"),
    "AGG_PREFIX": ("agg:v2", "agg:v2", "a/b"),
    "RATE_LIMIT": ("5 per second", "5 per second", "lots"),
    "RATE_LIMIT_SYNC_MS": ("0", 0, "-1"),
    "INGEST_MAX_BYTES": ("2048", 2048, "1023"),
    "TRUSTED_PROXIES": ("1", 1, "6"),
    "STREAM_KEY": ("log:v2", "log:v2", "log key"),
    "STREAM_MAXLEN": ("5000", 5000, "999"),
    "STREAM_RETENTION_S": ("3600", 3600, "9"),
    "MAX_SERIES": ("50000", 50000, "0"),
    "HEADER_TIMEOUT_S": ("2.5", 2.5, "0"),
    "BODY_TIMEOUT_S": ("5", 5.0, "-1"),
    "IDLE_TIMEOUT_S": ("120", 120.0, "nan"),
    "MAX_CONNECTIONS_PER_ADDRESS": ("0", 0, "-1"),
    "API_KEYS": (f" {DIGEST.upper()}@shop, {DIGEST} ", [f"{DIGEST}@shop", DIGEST], "my-raw-key-pasted-here"),
    "INGEST_RATE_LIMIT": ("100 per second", "100 per second", "plenty"),
    "JWT_SECRET": ("s" * 32, "s" * 32, "short secret"),
    "JWT_PUBLIC_KEY": (PUBLIC_PEM, PUBLIC_PEM, "-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----"),
    "METRICS_TOKEN": ("m" * 40, "m" * 40, "metrics\x07token" + "x" * 32),
    "REDIS_TLS_INSECURE": ("true", True, "maybe"),
    "REDIS_CA_FILE": (str(TLS.ca), str(TLS.ca), "/nonexistent/ca.pem"),
    "REDIS_CERT_FILE": (str(TLS.client_cert), str(TLS.client_cert), "/nonexistent/client.pem"),
    "REDIS_KEY_FILE": (str(TLS.client_key), str(TLS.client_key), "/nonexistent/client.key"),
    "TRUSTED_PROXY_NETWORKS": ("10.1.0.0/16, fd00::/8", ["10.1.0.0/16", "fd00::/8"], "10.0.0.0/33"),
}
# What a setting needs beside it to be valid at all (the TLS settings: a rediss:// URL).
CONTEXT = {
    "REDIS_TLS_INSECURE": {"REDIS_URL": TLS_URL},
    "REDIS_CA_FILE": {"REDIS_URL": TLS_URL},
    "REDIS_CERT_FILE": {"REDIS_URL": TLS_URL, "REDIS_KEY_FILE": str(TLS.client_key)},
    "REDIS_KEY_FILE": {"REDIS_URL": TLS_URL, "REDIS_CERT_FILE": str(TLS.client_cert)},
}
SETTINGS = list(Settings.model_fields)


def value_of(settings: Settings, name: str):
    value = getattr(settings, name)
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def test_every_setting_has_an_example():
    assert sorted(EXAMPLES) == sorted(SETTINGS)


@pytest.mark.parametrize("name", SETTINGS)
def test_a_good_value_is_applied(name, monkeypatch):
    good, expected, _ = EXAMPLES[name]
    for other, value in CONTEXT.get(name, {}).items():
        monkeypatch.setenv(other, value)
    monkeypatch.setenv(name, good)
    assert expected != Settings.model_fields[name].default  # or the test could not tell it was applied
    assert value_of(Settings.from_env(env_file=None), name) == expected


@pytest.mark.parametrize("name", SETTINGS)
def test_a_bad_value_is_one_line_naming_the_setting(name, monkeypatch):
    for other, value in CONTEXT.get(name, {}).items():
        monkeypatch.setenv(other, value)
    monkeypatch.setenv(name, EXAMPLES[name][2])
    with pytest.raises(SettingsError) as error:
        Settings.from_env(env_file=None)
    message = str(error.value)
    assert message.startswith((f"{name}=", f"{name}:")) and "\n" not in message
    if name in SECRETS:
        assert EXAMPLES[name][2] not in message


@pytest.mark.parametrize("name", SETTINGS)
def test_the_file_variant_is_read_without_its_trailing_newline(name, monkeypatch, tmp_path):
    good, expected, _ = EXAMPLES[name]
    for other, value in CONTEXT.get(name, {}).items():
        monkeypatch.setenv(other, value)
    (tmp_path / "value").write_text(good + "\n")
    monkeypatch.setenv(f"{name}_FILE", str(tmp_path / "value"))
    assert value_of(Settings.from_env(env_file=None), name) == expected


def test_a_setting_and_its_file_variant_together_are_refused(monkeypatch, tmp_path):
    (tmp_path / "port").write_text("8080")
    monkeypatch.setenv("PORT", "9090")
    monkeypatch.setenv("PORT_FILE", str(tmp_path / "port"))
    with pytest.raises(SettingsError, match="^PORT and PORT_FILE are both set; keep one$"):
        Settings.from_env(env_file=None)


def test_an_unreadable_settings_file_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("REDIS_PASSWORD_FILE", str(tmp_path / "missing"))
    with pytest.raises(SettingsError, match=r"^REDIS_PASSWORD_FILE='.*missing' cannot be read: No such file"):
        Settings.from_env(env_file=None)


def test_the_env_file_is_read_and_the_environment_wins(monkeypatch, tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("PORT=7000\nBATCH_MS=7\n")
    monkeypatch.setenv("PORT", "7001")
    settings = Settings.from_env(env_file=env_file)
    assert (settings.PORT, settings.BATCH_MS) == (7001, 7)


@pytest.mark.parametrize("url", [
    "redis:/typo", "redis://", "http://x", "unix://", "unix:///", "redis://u:hunter2@host:abc/0",
    "redis://u:hunter2@host:70000/0", "redis://u:hunter2@host:0/0", "redis://u:hunter2@host:6379/x", "redis://u:hunter2@host:6379/?db=x",
    "unix:///tmp/redis.sock", "redis//localhost:6379",
])
def test_every_malformed_redis_url_is_one_line_without_its_password(url, monkeypatch):
    monkeypatch.setenv("REDIS_URL", url)
    with pytest.raises(SettingsError) as error:
        Settings.from_env(env_file=None)
    message = str(error.value)
    assert message.startswith("REDIS_URL=") and "\n" not in message and "hunter2" not in message


def test_redis_password_replaces_the_password_in_the_url():
    with redis_server(None, "--requirepass", "right pass", password="right pass") as (_, port, _):
        url = f"redis://:wrong@127.0.0.1:{port}/0"
        with pytest.raises(redis.AuthenticationError):
            connect_redis(Settings(REDIS_URL=url)).ping()
        assert connect_redis(Settings(REDIS_URL=url, REDIS_PASSWORD="right pass")).ping()


@pytest.mark.parametrize("entry_point", [APP, GENERATOR], ids=["backend", "generator"])
def test_a_bad_url_stops_the_process_with_one_line_and_no_password(entry_point):
    env = clean_env(REDIS_URL="redis://admin:hunter2@localhost:notaport/0")
    proc = subprocess.run([sys.executable, str(entry_point)], env=env, capture_output=True, text=True, timeout=60,
                          check=False)
    assert proc.returncode == 2
    [line] = proc.stderr.splitlines()
    assert "REDIS_URL=" in line and "hunter2" not in line and "admin:***@" in line


def test_the_backend_takes_its_async_mode_from_a_file_before_it_patches(tmp_path):
    (tmp_path / "mode").write_text("threading\n")
    with redis_server() as (url, _, _), backend(url, ASYNC_MODE_FILE=tmp_path / "mode") as base:
        assert get_json(f"{base}/api/health")["async_mode"] == "threading"


def test_jwt_secret_and_public_key_together_are_refused(monkeypatch):
    monkeypatch.setenv("JWT_SECRET", "s" * 32)
    monkeypatch.setenv("JWT_PUBLIC_KEY", PUBLIC_PEM)
    with pytest.raises(SettingsError, match="^JWT_PUBLIC_KEY=.*: JWT_SECRET is set too; set one of them$"):
        Settings.from_env(env_file=None)


def test_a_non_rsa_public_key_is_refused(monkeypatch):
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    monkeypatch.setenv("JWT_PUBLIC_KEY", pem)
    with pytest.raises(SettingsError, match="must be an RSA public key"):
        Settings.from_env(env_file=None)


@pytest.mark.parametrize(("env", "message"), [
    ({"REDIS_CA_FILE": str(TLS.ca)}, "REDIS_CA_FILE is set but REDIS_URL='redis://localhost:6379/0' is not TLS; use rediss://"),
    ({"REDIS_TLS_INSECURE": "true"}, "REDIS_TLS_INSECURE is set but REDIS_URL='redis://localhost:6379/0' is not TLS"),
    ({"REDIS_URL": TLS_URL, "REDIS_TLS_INSECURE": "true", "REDIS_CA_FILE": str(TLS.ca)},
     "REDIS_TLS_INSECURE=true turns verification off, so REDIS_CA_FILE would do nothing; keep one"),
    ({"REDIS_URL": TLS_URL, "REDIS_KEY_FILE": str(TLS.client_key)}, "REDIS_KEY_FILE is set without REDIS_CERT_FILE"),
    ({"REDIS_URL": TLS_URL, "REDIS_CERT_FILE": str(TLS.client_cert), "REDIS_KEY_FILE": str(TLS.server_key)},
     "REDIS_CERT_FILE='.*client.crt': is not a PEM certificate whose private key is in REDIS_KEY_FILE"),
    ({"REDIS_URL": TLS_URL, "REDIS_CA_FILE": str(TLS.client_key)}, "REDIS_CA_FILE='.*': holds no PEM certificate"),
    ({"REDIS_URL": "rediss://u:hunter2@h:6380/0?ssl_cert_reqs=none"},
     r"REDIS_URL='rediss://u:\*\*\*@h:6380/0\?ssl_cert_reqs=none': \?ssl_cert_reqs= would weaken certificate "
     "verification; set REDIS_TLS_INSECURE=true"),
    ({"REDIS_URL": "rediss://h:6380/0?ssl_check_hostname=false"}, r"REDIS_URL=.*: \?ssl_check_hostname= would weaken"),
    ({"REDIS_URL": "rediss://h:6380/0?ssl_exclude_verify_flags=VERIFY_X509_STRICT"},
     r"REDIS_URL=.*: \?ssl_exclude_verify_flags= is not read from the URL; use REDIS_CA_FILE"),
    ({"REDIS_URL": "rediss://h:6380/0?ssl_ca_certs=/etc/ca.pem", "REDIS_TLS_INSECURE": "true"},
     r"REDIS_URL=.*: \?ssl_ca_certs= is not read from the URL; use REDIS_CA_FILE"),
])
def test_redis_tls_settings_that_do_not_fit_together_are_one_line(env, message, monkeypatch):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=f"^{message}") as error:
        Settings.from_env(env_file=None)
    assert "\n" not in str(error.value) and "hunter2" not in str(error.value)


def test_an_encrypted_client_key_is_refused_at_start(monkeypatch, tmp_path):
    encrypted = tmp_path / "encrypted.key"
    subprocess.run(["openssl", "pkey", "-in", TLS.client_key, "-aes256", "-passout", "pass:x", "-out", encrypted],
                   check=True, capture_output=True)
    for name, value in {"REDIS_URL": TLS_URL, "REDIS_CERT_FILE": str(TLS.client_cert), "REDIS_KEY_FILE": str(encrypted)}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match="^REDIS_KEY_FILE: an encrypted private key is not supported"):
        Settings.from_env(env_file=None)


def test_tls_verification_is_on_unless_insecure_and_the_url_may_say_so_with_the_flag():
    verified = Settings(REDIS_URL=TLS_URL, REDIS_CA_FILE=str(TLS.ca))
    assert redis_tls.options(verified) == {"ssl_cert_reqs": "required", "ssl_check_hostname": True,
                                           "ssl_ca_certs": str(TLS.ca), "ssl_certfile": None, "ssl_keyfile": None}
    insecure = Settings(REDIS_URL=f"{TLS_URL}?ssl_cert_reqs=none", REDIS_TLS_INSECURE=True)
    assert redis_tls.options(insecure)["ssl_cert_reqs"] == "none"
    assert redis_tls.insecure_warning(insecure) and not redis_tls.insecure_warning(verified)
    assert redis_tls.options(Settings()) == {}  # redis:// takes no TLS options
