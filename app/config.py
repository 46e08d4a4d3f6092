"""Service configuration, read from ``NENTANG_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATA_DIR = Path("var")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NENTANG_", extra="ignore")

    data_dir: Path = Field(
        default=DEFAULT_DATA_DIR,
        description="Where the embedded default keeps its SQLite file and generated signing key.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy async URL the service connects with. Defaults to a SQLite file "
        "in data_dir. On PostgreSQL this is the unprivileged application role.",
    )
    admin_database_url: str | None = Field(
        default=None,
        description="URL used by `nentang db upgrade` and `nentang db create-roles`: a role that "
        "may create tables (and roles). Defaults to database_url.",
    )
    db_owner_role: str = Field(
        default="nentang_owner", description="PostgreSQL role that owns the schema."
    )
    db_app_role: str = Field(
        default="nentang_app",
        description="PostgreSQL role the service connects as (no ownership, NOBYPASSRLS).",
    )
    db_pool_size: int = 10
    auto_migrate: bool | None = Field(
        default=None,
        description="Run migrations at start. Defaults to true for SQLite, false otherwise.",
    )

    issuer: str = Field(default="http://localhost:8000", description="The token issuer URL.")
    access_token_ttl_seconds: int = Field(default=600, ge=30, le=3600)
    signing_key_file: Path | None = Field(
        default=None,
        description="PEM file with the RSA private key that signs access tokens. Generated in "
        "data_dir on first start when absent. Every replica must share it.",
    )

    idempotency_ttl_seconds: int = 24 * 3600
    log_level: str = "INFO"
    log_json: bool = True

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'nentang.db'}"

    @property
    def effective_admin_database_url(self) -> str:
        return self.admin_database_url or self.effective_database_url

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")

    @property
    def should_auto_migrate(self) -> bool:
        return self.is_sqlite if self.auto_migrate is None else self.auto_migrate

    @property
    def effective_signing_key_file(self) -> Path:
        return self.signing_key_file or self.data_dir / "signing-key.pem"


@lru_cache
def get_settings() -> Settings:
    return Settings()
