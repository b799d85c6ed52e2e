"""`NAME_FILE`: every secret setting can be read from a mounted file instead of the environment
(as `deploy/k8s` hands them over), and a wrong file stops the process with a clear error."""

from pathlib import Path

import pytest
from pydantic import SecretStr
from pydantic_settings import SettingsError

from shared.settings import Settings

SECRET_SETTINGS = sorted(
    str(field.alias)
    for field in Settings.model_fields.values()
    if field.annotation == SecretStr | None
)
# Not typed as secrets, but they hold passwords or live in a Kubernetes Secret.
ALSO_MOUNTED = ["DATABASE_URL", "REDIS_URL", "JWT_PUBLIC_KEY"]
PEM = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAexample\n-----END PUBLIC KEY-----\n"


def value_of(settings: Settings, alias: str) -> object:
    (name,) = [n for n, f in Settings.model_fields.items() if f.alias == alias]
    value = getattr(settings, name)
    return value.get_secret_value() if isinstance(value, SecretStr) else value


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for alias in [*SECRET_SETTINGS, *ALSO_MOUNTED]:
        monkeypatch.delenv(alias, raising=False)
        monkeypatch.delenv(f"{alias}_FILE", raising=False)


def test_the_secret_settings_are_the_expected_ones() -> None:
    assert {"JWT_PRIVATE_KEY", "KEYVAULT_MASTER_KEYS", "INTERNAL_SERVICE_TOKEN"} <= set(
        SECRET_SETTINGS
    )
    assert {"ANTHROPIC_API_KEY", "HF_TOKEN", "KEYVAULT_SERVICE_TOKEN"} <= set(SECRET_SETTINGS)


@pytest.mark.parametrize("alias", [*SECRET_SETTINGS, *ALSO_MOUNTED])
def test_each_secret_setting_reads_its_file(
    alias: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / alias
    path.write_text(f"value-of-{alias}\n")  # as `echo` or a Secret with a final newline
    monkeypatch.setenv(f"{alias}_FILE", str(path))

    assert value_of(Settings(_env_file=None), alias) == f"value-of-{alias}"


def test_a_pem_keeps_its_inner_line_breaks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "jwt.pub").write_text(PEM)
    monkeypatch.setenv("JWT_PUBLIC_KEY_FILE", str(tmp_path / "jwt.pub"))

    assert Settings(_env_file=None).jwt_public_key == PEM.rstrip("\n")


def test_the_file_variable_works_from_a_dotenv_file(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("from-a-file")
    dotenv = tmp_path / ".env"
    dotenv.write_text(f"INTERNAL_SERVICE_TOKEN_FILE={tmp_path / 'token'}\n")

    settings = Settings(_env_file=dotenv)  # type: ignore[call-arg]

    assert value_of(settings, "INTERNAL_SERVICE_TOKEN") == "from-a-file"


def test_an_empty_file_variable_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY_FILE", "")

    assert Settings(_env_file=None).provider_key("anthropic") is None


def test_the_file_wins_over_an_empty_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "url").write_text("redis://redis:6379/0")
    monkeypatch.setenv("REDIS_URL", "")
    monkeypatch.setenv("REDIS_URL_FILE", str(tmp_path / "url"))

    assert Settings(_env_file=None).redis_url == "redis://redis:6379/0"


def test_a_value_and_a_file_together_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "key").write_text("from-the-file")
    monkeypatch.setenv("DEEPSEEK_API_KEY", "from-the-environment")
    monkeypatch.setenv("DEEPSEEK_API_KEY_FILE", str(tmp_path / "key"))

    with pytest.raises(SettingsError) as raised:
        Settings(_env_file=None)

    message = str(raised.value)
    assert "DEEPSEEK_API_KEY and DEEPSEEK_API_KEY_FILE are both set" in message
    assert "from-the" not in message


def test_a_missing_file_names_the_variable_and_path_never_a_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "not-mounted"
    monkeypatch.setenv("KEYVAULT_MASTER_KEYS_FILE", str(missing))

    with pytest.raises(SettingsError) as raised:
        Settings(_env_file=None)

    assert str(raised.value) == (
        f"KEYVAULT_MASTER_KEYS_FILE={missing}: cannot read it (No such file or directory)"
    )
