"""Settings fail loudly, at start-up, naming the variable that is wrong."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GOOD = {
    "SECRET_KEY": "k" * 50,
    "FIELD_ENCRYPTION_KEY": "f" * 32,
    "DEBUG": "false",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/titanflow",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
}


def load_settings(**overrides):
    env = {k: v for k, v in os.environ.items() if k not in GOOD and not k.startswith("WHATSAPP")}
    env.update(GOOD, TITANFLOW_READ_DOTENV="false", DJANGO_SETTINGS_MODULE="titanflow.settings")
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); print('loaded')"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_good_environment_loads():
    result = load_settings()
    assert result.returncode == 0, result.stderr
    assert "loaded" in result.stdout


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"SECRET_KEY": None}, "SECRET_KEY must be set"),
        ({"FIELD_ENCRYPTION_KEY": None}, "FIELD_ENCRYPTION_KEY must be set"),
        ({"DATABASE_URL": "not a url"}, "DATABASE_URL is not a database URL"),
        ({"DATABASE_URL": "mysql://root@localhost/titanflow"}, "must be a postgres:// URL"),
        ({"DATABASE_URL": "postgres://postgres@127.0.0.1:notaport/x"}, "DATABASE_URL"),
        ({"REDIS_URL": "localhost:6379"}, "REDIS_URL must be a redis:// URL"),
        ({"DEBUG": "perhaps"}, "DEBUG"),
        ({"DEFAULT_PHONE_REGION": "UAE"}, "DEFAULT_PHONE_REGION"),
        ({"WHATSAPP_API_VERSION": "23"}, "WHATSAPP_API_VERSION"),
        ({"IMPORT_MAX_ROWS": "0"}, "IMPORT_MAX_ROWS must be a positive number"),
        ({"IMPORT_MAX_BYTES": "lots"}, "IMPORT_MAX_BYTES"),
        ({"API_THROTTLE_USER": "fast"}, "API_THROTTLE_USER looks like 1200/minute"),
        ({"LOGIN_FAILURE_LIMIT": "0"}, "LOGIN_FAILURE_LIMIT must be 1 or more"),
        ({"SECURE_PROXY_SSL_HEADER": "https"}, "SECURE_PROXY_SSL_HEADER looks like"),
    ],
)
def test_bad_value_fails_at_start_naming_the_variable(overrides, message):
    result = load_settings(**overrides)
    assert result.returncode != 0
    assert message in result.stderr


def test_missing_secret_is_tolerated_only_in_debug():
    result = load_settings(SECRET_KEY=None, FIELD_ENCRYPTION_KEY=None, DEBUG="true")
    assert result.returncode == 0, result.stderr
