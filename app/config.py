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
        description="Key-set file (JSON, mode 0600) with the RSA keys that sign access tokens; "
        "`nentang keys rotate` adds a key and retires the old one after the token lifetime. "
        "Generated in data_dir on first start when absent (a single-key PEM file from an "
        "older release still loads). Every replica must share it.",
    )

    client_rate_limit_per_minute: int = Field(
        default=6000, ge=0,
        description="Default per-client request limit per replica (0 = none); a client's own "
        "setting overrides it.")
    refresh_token_ttl_seconds: int = Field(default=8 * 3600, ge=60)
    ui_redirect_uris: list[str] = Field(
        default=["http://localhost:8000/admin/callback", "http://127.0.0.1:8000/admin/callback"],
        description="Redirect URIs the first-party web UI (client 'nentang-ui') may use, "
        "besides <issuer>/admin/callback, which is always allowed.")
    idp_allow_http_loopback: bool = Field(
        default=False,
        description="Accept identity providers at http://127.0.0.1, ::1 or localhost (an "
        "air-gapped single server running its provider beside the platform). Off: https only.")
    login_max_failures: int = Field(
        default=5, ge=1, description="Failed sign-ins before an account is locked.")
    login_lockout_seconds: int = Field(
        default=60, ge=1,
        description="First lockout; it doubles with each further failure, up to an hour.")
    idempotency_ttl_seconds: int = 24 * 3600
    attachment_storage_url: str | None = Field(
        default=None,
        description="Where attachments are kept: file:///absolute/dir (default: "
        "<data_dir>/attachments) or s3://bucket[/prefix]?endpoint=...&region=... with "
        "credentials from the standard AWS variables.")
    attachment_max_bytes: int = Field(default=20 * 1024 * 1024, ge=1024,
                                      description="Largest attachment accepted (413 above).")
    max_body_bytes: int = Field(
        default=10 * 1024 * 1024, ge=1024,
        description="Largest request body the API accepts (413 above it).")
    delivery_allow_private_targets: bool = Field(
        default=False,
        description="Let webhooks reach loopback and private addresses (a receiver on the "
        "same network). Off: only public addresses, so a hook cannot probe the inside.")
    delivery_max_attempts: int = Field(
        default=10, ge=1, le=100,
        description="Attempts before a delivery is given up on (status 'dead').")
    delivery_timeout_seconds: float = Field(
        default=10.0, gt=0, le=300, description="How long one delivery attempt may take.")
    delivery_backoff_seconds: float = Field(
        default=30.0, gt=0,
        description="Wait after the first failed attempt; it doubles each time, with jitter, "
        "up to an hour.")
    delivery_lease_seconds: float = Field(
        default=60.0, gt=0, le=3600,
        description="How long a worker holds the deliveries it took; a worker that dies holds "
        "them that long before another sends them. Keep it above the timeout.")
    log_level: str = "INFO"
    log_json: bool = True

    @property
    def effective_attachment_storage_url(self) -> str:
        return self.attachment_storage_url or (self.data_dir / "attachments").resolve().as_uri()

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
