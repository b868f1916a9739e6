"""All configuration, read once from environment variables prefixed ``SEARCH_``."""

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# The repository's front-end, next to common/; a packaged install (the Docker image) sets
# SEARCH_FRONTEND_DIR instead.
FRONTEND = Path(__file__).resolve().parents[1] / "frontend"


def _split_commas(value: object) -> object:
    """Accept ``a,b`` in the environment as well as a real list."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Settings shared by every app. Each field is the env var ``SEARCH_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="SEARCH_", env_file=".env", extra="ignore")

    milvus_uri: str = Field(
        "./data/milvus.db",
        description="A Milvus Lite file (*.db) or a server address such as http://milvus:19530.",
    )
    milvus_token: SecretStr | None = Field(None, description="Milvus token, `user:password`.")
    sql_url: str = Field(
        "sqlite:///./data/records.db",
        description="SQLAlchemy URL: SQLite by default, or mysql+mysqlconnector://user:pw@host/db.",
    )
    data_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=lambda: [Path("./data/imports")],
        description="Folders a server-side load may read from (comma separated).",
    )
    upload_dir: Path = Field(Path("./data/uploads"), description="Where uploads are stored.")
    media_dir: Path = Field(Path("./data/media"), description="Item files: originals, thumbnails.")
    max_upload_bytes: int = Field(50 * 1024 * 1024, gt=0, description="Largest request body.")
    max_upload_dir_bytes: int = Field(
        2 * 1024**3,
        gt=0,
        description="Most bytes of uploads waiting in `upload_dir` for their load; beyond, an "
        "upload gets 507.",
    )
    max_queued_jobs: int = Field(
        20, ge=1, le=10_000, description="Loads that may wait for an app's job worker; beyond, 429."
    )
    header_timeout_s: float = Field(
        10, gt=0, le=3600, description="Seconds a client has to send a request's headers."
    )
    body_timeout_s: float = Field(
        60,
        gt=0,
        le=86_400,
        description="Seconds a client has to send a whole request body (an upload of "
        "`max_upload_bytes` at 1 MB/s takes 50 s); slower clients are cut off with 408.",
    )
    api_key: SecretStr | None = Field(
        None,
        description="When set, routes that write (create, load, add, delete, cancel) need "
        "`Authorization: Bearer <key>`; searches and reads stay open. See docs/architecture.md.",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Origins allowed by CORS; none by default."
    )
    role: Literal["api", "worker", "all"] = Field(
        "all",
        description="What this process does: serve HTTP (`api`), run load jobs (`worker`), "
        "or both (`all`). `api` and `worker` need MySQL: see docs/scale-out.md.",
    )
    lease_s: float = Field(
        30,
        ge=1,
        le=3600,
        description="Seconds without a heartbeat after which a process counts as dead and "
        "the others take over its jobs and half-written items.",
    )
    bulk_import_dir: Path | None = Field(
        None,
        description="A folder this process writes bulk import files to and the Milvus server "
        "reads at the same path (unset: no bulk import). See docs/scale-out.md.",
    )
    bulk_import_min_items: int = Field(
        100_000,
        ge=1,
        description="Loads of at least this many items bulk-import their vectors (when "
        "`bulk_import_dir` is set) instead of inserting them in batches.",
    )
    host: str = Field("127.0.0.1", description="Bind address of the HTTP server.")
    port: int = Field(8000, ge=1, le=65535)
    log_level: str = "INFO"
    load_sample_data: bool = Field(
        True, description="Load an app's sample data when its default collection does not exist."
    )
    job_batch_size: int = Field(64, ge=1, le=4096, description="Items per encode/insert batch.")
    query_batch_size: int = Field(
        32,
        ge=1,
        le=1024,
        description="Most inputs of concurrent queries encoded, and most of their Milvus "
        "searches sent, as one batch.",
    )
    query_batch_wait_ms: float = Field(
        2.0, ge=0, le=1000, description="How long a query waits for others to join its batch."
    )
    query_queue_size: int = Field(
        256,
        ge=1,
        le=100_000,
        description="Query inputs that may wait for an encoder (and searches for Milvus); "
        "beyond, a query gets 503.",
    )
    frontend_dir: Path = Field(
        FRONTEND,
        description="The web front-end (static files) served at `/`; not served if missing.",
    )

    _split = field_validator("data_roots", "cors_origins", mode="before")(_split_commas)
