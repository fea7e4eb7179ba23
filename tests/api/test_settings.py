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
