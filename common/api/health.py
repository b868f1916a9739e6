"""Liveness (the process answers) and readiness (Milvus and SQL answer too)."""

from dataclasses import asdict
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from common.context import Context

router = APIRouter(prefix="/health", tags=["health"])


class Live(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok"}]})

    status: str = Field(examples=["ok"])


class Ready(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "ready",
                    "milvus": "milvus_lite-3.2.2",
                    "milvus_mode": "lite",
                    "sql": "sqlite",
                    "encoder": "all-MiniLM-L6-v2 (384-d, COSINE)",
                    "mode": "",
                }
            ]
        }
    )

    status: str = Field(examples=["ready"])
    milvus: str = Field(description="Milvus version, or why it is unavailable.")
    milvus_mode: str = Field(description="`lite` (embedded Milvus Lite) or `server`.")
    sql: str = Field(description="SQL dialect, or why it is unavailable.")
    encoder: str = Field(description="The encoder serving this app and its dimension.")
    mode: str = Field("", description="How this app searches on the connected Milvus.")


@router.get("/live", summary="Is the process up?")
async def live() -> Live:
    """Answers as long as the process serves HTTP, whatever the state of Milvus and SQL."""
    return Live(status="ok")


@router.get(
    "/ready",
    summary="Can the app serve requests? Checks Milvus and SQL.",
    response_model=Ready,
    responses={503: {"model": Ready, "description": "A backend is unavailable."}},
)
def ready(context: Context) -> Ready | JSONResponse:
    """Pings Milvus and SQL: 200 when both answer, else 503 naming the one that does not."""
    encoder = f"{context.encoder.name} ({context.encoder.dim}-d, {context.encoder.metric})"
    healthy, backends = context.storage.check()
    report = Ready(
        status="ready" if healthy else "unavailable",
        milvus=backends["milvus"],
        milvus_mode="lite" if context.storage.vectors.capabilities.is_lite else "server",
        sql=backends["sql"],
        encoder=encoder,
        mode=context.mode,
    )
    if healthy:
        return report
    return JSONResponse(report.model_dump(), status_code=503)


class Process(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"role": "api", "host": "search-api-1", "pid": 7, "seconds_since_heartbeat": 2.0}
            ]
        }
    )

    role: Literal["api", "worker", "all"] = Field(
        description="Serves HTTP (`api`), runs load jobs (`worker`), or both (`all`)."
    )
    host: str
    pid: int
    seconds_since_heartbeat: float = Field(
        description="A process silent for `SEARCH_LEASE_S` counts as dead; the others take "
        "over its jobs."
    )


@router.get("/processes", summary="This app's live processes: API servers and job workers")
def processes(context: Context) -> list[Process]:
    """Every process of this app holding a lease (``docs/scale-out.md``). Loads run only
    while one with role `worker` or `all` is alive; with none, jobs wait `queued`."""
    return [Process(**asdict(holder)) for holder in context.runner.lease.live()]
