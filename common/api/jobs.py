"""Load jobs: read, list, stream as Server-Sent Events, cancel."""

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from sse_starlette import EventSourceResponse

from common.access import WriteAccess
from common.context import Context
from common.http import ErrorResponse, Responses
from common.jobs import Job
from common.names import MAX_NAME_LENGTH

JobId = Annotated[
    str,
    Path(
        description="The id a load answered with (also the end of its `Location`).",
        examples=["f45e2a2005054d478a134714dbcb461b"],
    ),
]

router = APIRouter(prefix="/jobs", tags=["jobs"])
NOT_FOUND: Responses = {404: {"model": ErrorResponse, "description": "No such job."}}
POLL_SECONDS = 0.3
EVENTS_EXAMPLE = (
    'event: progress\ndata: {"id": "f45e2a2005054d478a134714dbcb461b", "status": "running", '
    '"total": 5, "done": 2, …}\n\nevent: end\ndata: {"id": "f45e2a2005054d478a134714dbcb461b", '
    '"status": "succeeded", "total": 5, "done": 5, "added": 4, …}\n\n'
)


@router.get("", summary="Recent load jobs, newest first")
def list_jobs(
    context: Context,
    limit: Annotated[
        int, Query(ge=1, le=500, description="At most this many.", examples=[20])
    ] = 50,
    collection: Annotated[
        str | None,
        Query(
            max_length=MAX_NAME_LENGTH,
            description="Only this collection's jobs.",
            examples=["office"],
        ),
    ] = None,
) -> list[Job]:
    """The latest load jobs of this app (or of one collection), without their item errors."""
    return context.jobs.recent(limit, collection)


@router.get(
    "/{job_id}", summary="A job's status, counters, timings and item errors", responses=NOT_FOUND
)
def get_job(job_id: JobId, context: Context) -> Job:
    """Where a load is: queued, running, or how it ended, with up to 1,000 item errors."""
    return context.jobs.get(job_id)


@router.get(
    "/{job_id}/events",
    summary="Follow a job live (Server-Sent Events)",
    description="Sends a `progress` event with the job (as in `GET /jobs/{id}`, without item "
    "errors) whenever it changes, then one `end` event with the full job, then closes.",
    responses={200: {"content": {"text/event-stream": {"example": EVENTS_EXAMPLE}}}, **NOT_FOUND},
    response_class=EventSourceResponse,
)
async def job_events(job_id: JobId, context: Context, request: Request) -> EventSourceResponse:
    await run_in_threadpool(context.jobs.get, job_id)  # 404 before the stream starts

    async def events() -> AsyncIterator[dict[str, str]]:
        last = ""
        while not await request.is_disconnected():
            job = await run_in_threadpool(context.jobs.get, job_id, error_limit=0)
            if job.finished:
                full = await run_in_threadpool(context.jobs.get, job_id)
                yield {"event": "end", "data": full.model_dump_json()}
                return
            current = job.model_dump_json(exclude={"errors"})
            if current != last:
                last = current
                yield {"event": "progress", "data": current}
            await asyncio.sleep(POLL_SECONDS)

    return EventSourceResponse(events(), ping=10)


@router.post(
    "/{job_id}/cancel",
    status_code=202,
    dependencies=[WriteAccess],
    summary="Ask a queued or running job to stop",
    responses={
        **NOT_FOUND,
        409: {"model": ErrorResponse, "description": "The job has already finished."},
    },
)
def cancel_job(job_id: JobId, context: Context) -> Job:
    """Stop a load between two batches: what it stored so far stays, the rest is skipped.

    Answers the job as it is now; it ends `cancelled` shortly after (follow its events).
    """
    return context.runner.cancel(job_id)
