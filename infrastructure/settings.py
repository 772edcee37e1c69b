"""Settings (read once from the environment) and the node's config file.

``Settings`` says where the node keeps its data and which database it uses;
``NodeConfig`` (``<data dir>/config.json``, written by ``fedsync init``)
says who the node is: its name ``urn:domain:<host>`` and its base URL.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, ValidationError

CONFIG_FILE = "config.json"
_HOST_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(:[0-9]{1,5})?$")
SQLITE_FILE = "fedsync.sqlite"
KEYS_DIR = "keys"


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    data_dir: Path = Path("./data")
    database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = 1024 * 1024
    federation_max_body_bytes: int = 32 * 1024 * 1024
    pull_interval: float = 30.0  # seconds between anti-entropy pulls
    retry_cap: float = 60.0  # longest wait between retries to a failing peer (breaker: 5x)
    key_refresh_interval: float = 300.0  # seconds between two readings of every peer's keys (revocations)
    pending_max_per_sender: int = 5000  # held transactions (missing parents) one sender may have here
    token_refresh_interval: float = 2.0  # seconds between two readings of the editor token revocations
    anonymous_rate: float = 50.0  # requests per second one client may make without valid credentials (0: no limit)
    anonymous_burst: int = 200  # ... and at once, before the rate applies
    cors_origins: str = ""  # browser origins allowed to call the API, comma-separated ("": none, the default)
    # full-text search's language: a PostgreSQL text search configuration (dutch, english, simple, ...); on
    # SQLite, english stems and the others match words as written. None: the one the store keeps (a new
    # store: simple); another one than the store's re-indexes when the node opens.
    search_language: str | None = Field(None, pattern=r"^[a-z_]{1,40}$")
    # where attachments' bytes live: "file" (<data dir>/blobs) or "s3://bucket[/prefix]" (boto3, the s3 extra)
    blob_store: str = Field("file", pattern=r"^(file|s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^\s]*)?)$")
    s3_endpoint_url: str | None = None  # an S3-compatible server's URL (MinIO, ...); None: AWS itself
    max_blob_bytes: int = Field(20 * 1024 * 1024, gt=0)  # largest attachment (upload or from a peer)
    webhook_timeout: float = 5.0  # seconds a webhook's receiver has to connect, take the body and answer (each)
    webhook_retry_base: float = 1.0  # first wait after a failed delivery; doubled on every failure after it
    webhook_retry_cap: float = 300.0  # longest wait between two attempts to deliver to a failing webhook
    # threads verifying a received batch's signatures (0: one per core); one fewer processes check pulled pages
    verify_workers: int = Field(0, ge=0, le=64)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for field, var in (("data_dir", "FEDSYNC_DATA_DIR"), ("database_url", "FEDSYNC_DATABASE_URL"),
                           ("host", "FEDSYNC_HOST"), ("port", "FEDSYNC_PORT"),
                           ("max_body_bytes", "FEDSYNC_MAX_BODY_BYTES"),
                           ("federation_max_body_bytes", "FEDSYNC_FEDERATION_MAX_BODY_BYTES"),
                           ("pull_interval", "FEDSYNC_PULL_INTERVAL"), ("retry_cap", "FEDSYNC_RETRY_CAP"),
                           ("key_refresh_interval", "FEDSYNC_KEY_REFRESH_INTERVAL"),
                           ("pending_max_per_sender", "FEDSYNC_PENDING_MAX_PER_SENDER"),
                           ("token_refresh_interval", "FEDSYNC_TOKEN_REFRESH_INTERVAL"),
                           ("anonymous_rate", "FEDSYNC_ANONYMOUS_RATE"),
                           ("anonymous_burst", "FEDSYNC_ANONYMOUS_BURST"),
                           ("cors_origins", "FEDSYNC_CORS_ORIGINS"),
                           ("search_language", "FEDSYNC_SEARCH_LANGUAGE"),
                           ("blob_store", "FEDSYNC_BLOB_STORE"), ("s3_endpoint_url", "FEDSYNC_S3_ENDPOINT_URL"),
                           ("max_blob_bytes", "FEDSYNC_MAX_BLOB_BYTES"),
                           ("webhook_timeout", "FEDSYNC_WEBHOOK_TIMEOUT"),
                           ("webhook_retry_base", "FEDSYNC_WEBHOOK_RETRY_BASE"),
                           ("webhook_retry_cap", "FEDSYNC_WEBHOOK_RETRY_CAP"),
                           ("verify_workers", "FEDSYNC_VERIFY_WORKERS")):
            if env.get(var):
                values[field] = env[var]
        values.update({k: v for k, v in overrides.items() if v is not None})
        if not values.get("database_url"):  # the store the node was set up on (fedsync init keeps it)
            values["database_url"] = NodeConfig.stored_database_url(Path(str(values.get("data_dir", "./data"))))
        return cls.model_validate(values)

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / SQLITE_FILE

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / KEYS_DIR


class InvalidConfig(ValueError):
    """A config.json that does not parse or does not hold a node's config (said in one line)."""


class NodeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    base_url: str
    database_url: str | None = None  # None: SQLite in the data dir; FEDSYNC_DATABASE_URL overrides it

    @classmethod
    def stored_database_url(cls, data_dir: Path) -> str | None:
        """The database URL recorded in a data dir's config, if there is one."""
        try:
            return cls.load(data_dir).database_url
        except (OSError, ValueError):
            return None

    @classmethod
    def for_base_url(cls, base_url: str, host: str | None = None, database_url: str | None = None) -> NodeConfig:
        """Name the node after the base URL's host, or after ``host`` (a node behind a proxy)."""
        parsed = urlparse(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"base URL must be http(s)://host[:port]: {base_url!r}")
        if host is None:
            host = parsed.hostname.lower() + (f":{parsed.port}" if parsed.port else "")
        if not _HOST_RE.match(host):
            raise ValueError(f"not a host name: {host!r}")
        return cls(name=f"urn:domain:{host.lower()}", base_url=base_url.rstrip("/"), database_url=database_url)

    @classmethod
    def load(cls, data_dir: Path) -> NodeConfig:
        path = data_dir / CONFIG_FILE
        if not path.exists():
            raise FileNotFoundError(f"{path} not found: run 'fedsync init' first")
        try:
            return cls.model_validate_json(path.read_text())
        except ValidationError as e:
            problems = "; ".join(f"{'.'.join(map(str, error['loc'])) or 'file'}: {error['msg']}"
                                 for error in e.errors())
            raise InvalidConfig(f"{path} is not a valid node config ({problems}); fix it or restore it from a "
                                "backup") from None

    def save(self, data_dir: Path) -> None:
        path = data_dir / CONFIG_FILE
        tmp = path.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        # The database URL may hold a password: the file is the owner's only.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(json.dumps(self.model_dump(exclude_none=True), indent=2) + "\n")
        os.replace(tmp, path)

    @property
    def host(self) -> str:
        return self.name.removeprefix("urn:domain:")
