"""With DEBUG off the settings refuse unsafe defaults and pass Django's deployment checks.

Each case imports the settings in a fresh process, because settings are read once per process.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STRONG_KEY = "k" * 20 + "-Prospect-production-key-0123456789"


def run_manage(tmp_path, *args, **env):
    environment = {key: value for key, value in os.environ.items() if key not in {"SECRET_KEY", "DEBUG", "ALLOWED_HOSTS"}}
    environment.update(PROSPECT_DATA_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="feedback.settings", **env)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=environment, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("key", ["", "too-short"])
def test_debug_off_refuses_a_missing_or_weak_secret_key(tmp_path, key):
    result = run_manage(tmp_path, "check", DEBUG="0", SECRET_KEY=key, ALLOWED_HOSTS="prospect.example.org")
    assert result.returncode != 0
    assert "SECRET_KEY must" in result.stderr


def test_debug_off_with_a_real_key_passes_the_deployment_checks(tmp_path):
    result = run_manage(tmp_path, "check", "--deploy", "--fail-level", "WARNING",
                        DEBUG="0", SECRET_KEY=STRONG_KEY, ALLOWED_HOSTS="prospect.example.org")
    assert result.returncode == 0, result.stdout + result.stderr


def test_debug_on_keeps_a_generated_development_key(tmp_path):
    first = run_manage(tmp_path, "shell", "-c", "from django.conf import settings; print(settings.SECRET_KEY)", DEBUG="1")
    second = run_manage(tmp_path, "shell", "-c", "from django.conf import settings; print(settings.SECRET_KEY)", DEBUG="1")
    assert first.returncode == 0, first.stderr
    assert len(first.stdout.strip()) >= 50 and first.stdout == second.stdout
