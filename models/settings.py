"""One settings object for every process (worker, API, CLI, simulator).

Read from the environment (``TEMPORAL_ADDRESS``, ``DATABASE_URL``…) and, optionally, a
``.env``-style file named by ``PRECONTENTIEUX_ENV_FILE`` (default ``.env``).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=os.environ.get("PRECONTENTIEUX_ENV_FILE", ".env"),
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
    )

    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    temporal_task_queue: str = "precontentieux"
    temporal_tls: bool = False
    temporal_tls_cert: Path | None = None
    temporal_tls_key: Path | None = None
    temporal_api_key: SecretStr | None = None

    data_dir: Path = Path(".data")
    database_url: str | None = None  # default: sqlite file under data_dir

    policies_file: Path | None = None  # default: config/policies.yaml shipped with the code

    lre_base_url: str = "http://127.0.0.1:8081/api/"
    lre_token: SecretStr = SecretStr("dev-lre-token")
    lre_webhook_secret: SecretStr = SecretStr("dev-webhook-secret")
    lre_webhook_url: str = "http://127.0.0.1:8000/v1/lre/webhook"
    lre_timeout_seconds: float = 20.0

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # "key:role,key:role" — roles: backoffice, operator, manager, admin
    api_keys: str = "dev-backoffice-key:backoffice,dev-operator-key:operator,dev-manager-key:manager"

    ui_url: str = "http://localhost:8233"
    log_level: str = "INFO"
    worker_max_concurrent_activities: int = Field(default=20, ge=1)
    # host:port where the worker exports Temporal SDK metrics for Prometheus (off when unset)
    worker_metrics_address: str | None = None

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'precontentieux.db').resolve()}"

    @property
    def letters_dir(self) -> Path:
        return self.data_dir / "letters"


@lru_cache
def get_settings() -> Settings:
    return Settings()
