"""Helpers shared by the auth tests."""

from pathlib import Path

from shared.settings import Settings


def make_settings(database_url: str, data_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "DATABASE_URL": database_url,
        "DATA_DIR": data_dir,
        "NODE_ENV": "test",
        "BCRYPT_ROUNDS": 4,
        "JWT_EXPIRY": "1h",
        "JWT_PRIVATE_KEY": None,
        "JWT_PUBLIC_KEY": None,
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]
