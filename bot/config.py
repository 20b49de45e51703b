"""All configuration, from the environment or a `.env` file, in one pydantic-settings class.

Secrets are SecretStr so that printing or logging the settings never shows a token.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
DEFAULT_DATABASE_URL = f"sqlite:///{DATA_DIR / 'pcp.db'}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    database_url: str = DEFAULT_DATABASE_URL
    port: int = 3000
    host: str = "0.0.0.0"
    http_threads: int = 8
    pcp_timezone: str = "Europe/London"
    pcp_digest_channels: Annotated[list[str], NoDecode] = []
    pcp_digest_cron: str = "0 9 * * mon"
    pcp_alert_cron: str = "0 8 * * *"
    pcp_admins: Annotated[list[str], NoDecode] = []
    pcp_scheduler: bool = True  # run the alert, digest and delivery jobs inside pcp serve
    pcp_delivery_seconds: float = 30  # how often the outbox delivery job runs
    pcp_delivery_stale_seconds: float | None = None  # /healthz: 503 when delivery has not succeeded for this long
    #                                                   (default: 3 x PCP_DELIVERY_SECONDS)
    pcp_shutdown_seconds: float = 20  # after SIGTERM: at most this long to finish requests and jobs, then exit
    pcp_listener_threads: int = 32  # Bolt workers: each answers one request, including its POST to response_url
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"  # text for a terminal; json (one object a line) for services

    @field_validator("pcp_digest_channels", "pcp_admins", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        """Accept "U1,U2" (how people write it in an env file) as well as a list."""
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @property
    def has_slack_credentials(self) -> bool:
        return self.slack_bot_token is not None and self.slack_signing_secret is not None
