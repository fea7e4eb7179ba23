"""Service settings (digits.api.settings): typed defaults, DIGITS_* variables, flags on top, and a bad
value as one ValueError naming the variable or flag."""

from __future__ import annotations

import pytest

pytest.importorskip("pydantic_settings", reason="the API needs the api extra: pip install 'digits[api]'")

from digits.api.settings import Settings, load_settings  # noqa: E402


def test_settings_from_environment_and_flags(monkeypatch):
    monkeypatch.setenv("DIGITS_PORT", "9123")
    monkeypatch.setenv("DIGITS_MAX_BATCH", "3")
    monkeypatch.setenv("DIGITS_UNCERTAIN_BELOW", "0.9")
    loaded = load_settings(port=None, workers=2)
    assert (loaded.port, loaded.max_batch, loaded.uncertain_below, loaded.workers) == (9123, 3, 0.9, 2)
    assert load_settings(port=80).port == 80  # flags win
    monkeypatch.setenv("DIGITS_PORT", "eighty")
    with pytest.raises(ValueError, match="DIGITS_PORT='eighty' is invalid"):
        load_settings()
    with pytest.raises(ValueError, match="--uncertain-below=2.0"):
        load_settings(port=1, uncertain_below=2.0)


def test_defaults_without_environment():
    defaults = Settings()
    assert (defaults.run, defaults.runs_dir, defaults.model_name, defaults.backend) == (None, None, None, None)
    assert (defaults.host, defaults.port, defaults.workers) == ("127.0.0.1", 8000, 1)
    assert (defaults.max_body_bytes, defaults.max_batch, defaults.uncertain_below) == (16 * 2**20, 256, 0.5)
    assert defaults.timeout_seconds == 30.0 and defaults.opentelemetry is False and defaults.access_log is False


def test_boolean_and_unknown_variables(monkeypatch):
    monkeypatch.setenv("DIGITS_ACCESS_LOG", "true")
    monkeypatch.setenv("DIGITS_SOMETHING_ELSE", "ignored")  # other DIGITS_* variables (DIGITS_DATA_DIR...) pass
    assert load_settings().access_log is True
    monkeypatch.setenv("DIGITS_WORKERS", "0")
    with pytest.raises(ValueError, match="DIGITS_WORKERS='0' is invalid"):
        load_settings()


def test_reject_below_from_environment_and_flags(monkeypatch):
    """DIGITS_REJECT_BELOW / --reject-below override the model's stored not-a-digit threshold (None: keep it)."""
    assert Settings().reject_below is None
    monkeypatch.setenv("DIGITS_REJECT_BELOW", "0.8")
    assert load_settings().reject_below == 0.8
    assert load_settings(reject_below=0.0).reject_below == 0.0  # 0 turns refusal off, and is not "unset"
    monkeypatch.setenv("DIGITS_REJECT_BELOW", "1.5")
    with pytest.raises(ValueError, match="DIGITS_REJECT_BELOW='1.5' is invalid"):
        load_settings()
    monkeypatch.delenv("DIGITS_REJECT_BELOW")
    with pytest.raises(ValueError, match="--reject-below=-0.1"):
        load_settings(reject_below=-0.1)


def test_serve_help_names_the_access_log_option():
    from helpers import run_cli

    result = run_cli("serve", "--help")
    assert result.returncode == 0 and "--access-log" in result.stdout and "log every request" in result.stdout


def test_connection_limits_grace_and_pixel_budgets(monkeypatch):
    defaults = Settings()
    assert (defaults.header_timeout_seconds, defaults.max_connections) == (10.0, 1000)
    assert defaults.shutdown_grace_seconds == 35.0  # the request timeout and 5 s to spare: no request dropped
    assert (defaults.max_request_pixels, defaults.max_pending_pixels) == (100_000_000, 400_000_000)
    assert load_settings(timeout_seconds=60).shutdown_grace_seconds == 65  # follows the timeout when unset
    with pytest.raises(ValueError, match=r"--shutdown-grace-seconds=10 is shorter than timeout_seconds \+ 1 s"):
        load_settings(shutdown_grace_seconds=10)
    monkeypatch.setenv("DIGITS_SHUTDOWN_GRACE_SECONDS", "20")
    with pytest.raises(ValueError, match="^DIGITS_SHUTDOWN_GRACE_SECONDS=20 is shorter"):
        load_settings()
    assert load_settings(timeout_seconds=5).shutdown_grace_seconds == 20
    monkeypatch.delenv("DIGITS_SHUTDOWN_GRACE_SECONDS")
    with pytest.raises(ValueError, match="--max-request-pixels=500000000 is more than max_pending_pixels"):
        load_settings(max_request_pixels=500_000_000)
    for flag, value in (("max_connections", 0), ("header_timeout_seconds", 0), ("max_pending_pixels", -1)):
        with pytest.raises(ValueError, match=f"--{flag.replace('_', '-')}={value} is invalid"):
            load_settings(**{flag: value})
