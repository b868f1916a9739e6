"""Loads: validate the request, answer 202 with a job at once, do the work off the event loop."""

from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Annotated, Any

from fastapi import APIRouter, Body, File, Request, Response, UploadFile
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from common.context import AppContext, CollectionName, Context
from common.errors import InvalidInput, NotFound, UnsupportedMediaType
from common.files import remove_quietly, resolve_under_roots, store_upload
from common.http import ErrorResponse, json_example, url_for
from common.jobs import JOB_EXAMPLE, Job, JobContext
from common.loading import prefetch, run_load
from common.solution import Parser, Solution

ACCEPTED = "The load is accepted; follow it at `Location` (`GET /jobs/{id}`) or its `/events`."
QUEUED = {
    **JOB_EXAMPLE,
    "status": "queued",
    "total": None,
    "done": 0,
    "added": 0,
    "failed": 0,
    "errors": [],
    "timings": {},
    "started_at": None,
    "finished_at": None,
}


def queued(source: str) -> dict[int | str, dict[str, Any]]:
    """The 202 a load answers at once, as the docs show it."""
    return {202: json_example({**QUEUED, "source": source})}


class PathLoad(BaseModel):
    path: str = Field(
        description="A file below one of the server's data roots (`SEARCH_DATA_ROOTS`), "
        "relative to a root or absolute.",
        examples=["library.csv"],
    )


@dataclass(frozen=True)
class LoadSource:
    """What a load reads: a file, its parser, and whether it is an upload to delete after."""

    label: str  # shown as the job's source: the upload's name, the path asked for, "sample"
    path: Path
    parser: Parser[Any]
    is_upload: bool = False

    def discard(self) -> None:
        if self.is_upload:
            remove_quietly(self.path)


def start_load(context: AppContext, name: str, source: LoadSource) -> Job:
    """Check the whole file now (422 before anything is created), then queue the job.

    The job creates the collection if it does not exist yet.
    """
    try:
        source.parser.check(source.path)
    except BaseException:
        source.discard()
        raise
    batch_size = context.settings.job_batch_size

    def work(job: JobContext) -> None:
        # Created here, not in the request: on a Milvus server that takes seconds.
        collection = context.collections.get_or_create(name)
        codec = context.solution.codec(context.encoder, collection)
        job.set_total(source.parser.count(source.path))
        # Reading (decoding images, parsing rows) runs ahead on its own thread.
        items = prefetch(source.parser.parse(source.path), ahead=2 * batch_size)
        run_load(job, collection, items, codec, batch_size)

    return context.runner.submit(name, source.label, work, source.discard)


async def accept(
    request: Request, response: Response, context: AppContext, name: str, source: LoadSource
) -> Job:
    """Queue the load and answer 202 with the job and where to follow it."""
    job = await run_in_threadpool(start_load, context, name, source)
    response.headers["Location"] = url_for(request, "get_job", job_id=job.id)
    return job


def _parser(solution: Solution[Any], filename: str) -> tuple[str, Parser[Any]]:
    suffix = PurePath(filename).suffix.lower()
    parser = solution.parser_for(suffix)
    if parser is None:
        raise UnsupportedMediaType(
            f"cannot load {suffix or 'a file without a suffix'}; supported: "
            f"{', '.join(solution.suffixes)}"
        )
    return suffix, parser


def loads_router(solution: Solution[Any]) -> APIRouter:
    router = APIRouter(prefix="/collections/{name}/loads", tags=["loads"])
    formats = ", ".join(solution.suffixes)
    upload = f"library{solution.suffixes[0]}"
    errors: dict[int | str, dict[str, Any]] = {
        413: {"model": ErrorResponse, "description": "The upload is over the size limit."},
        415: {"model": ErrorResponse, "description": f"Not one of: {formats}."},
        422: {
            "model": ErrorResponse,
            "description": "The file is empty or unreadable as a "
            "whole (wrong encoding, missing columns); nothing was loaded.",
        },
    }

    @router.post(
        "",
        status_code=202,
        summary=f"Load an uploaded file ({formats}) as a job",
        description=f"""Upload one file; the load runs in the background as a job. Answers
**202** at once with the job and its URL in `Location`; follow it with `GET /jobs/{{id}}` or
its Server-Sent Events at `/jobs/{{id}}/events`. Rows that cannot be read are listed in the
job's `errors` and skipped; a file unreadable as a whole is refused now (422).

```
curl -F file=@{upload} localhost:8000/collections/{solution.default_collection}/loads
```
""",
        response_description=ACCEPTED,
        responses={**queued(upload), **errors},
    )
    async def load_upload(
        name: CollectionName,
        context: Context,
        request: Request,
        response: Response,
        file: Annotated[UploadFile, File(description=f"One of: {formats}")],
    ) -> Job:
        suffix, parser = _parser(solution, file.filename or "")
        path = await run_in_threadpool(
            store_upload,
            file.file,
            context.settings.upload_dir,
            suffix,
            context.settings.max_upload_bytes,
        )
        label = PurePath(file.filename or "upload").name
        return await accept(
            request, response, context, name, LoadSource(label, path, parser, is_upload=True)
        )

    @router.post(
        "/path",
        status_code=202,
        summary="Load a file that is already on the server, below a data root",
        response_description=ACCEPTED,
        responses={
            **queued(upload),
            403: {"model": ErrorResponse, "description": "The path is outside the data roots."},
            404: {"model": ErrorResponse, "description": "No such file."},
            **errors,
        },
    )
    async def load_path(
        name: CollectionName,
        body: Annotated[PathLoad, Body(examples=[{"path": upload}])],
        context: Context,
        request: Request,
        response: Response,
    ) -> Job:
        """Read a file the server already has; only paths below `SEARCH_DATA_ROOTS` are allowed.

        Answers **202** with the job at once, as an upload does.
        """
        path = await run_in_threadpool(resolve_under_roots, body.path, context.settings.data_roots)
        if not path.is_file():
            raise InvalidInput(f"{body.path!r} is not a file")
        _, parser = _parser(solution, path.name)
        return await accept(request, response, context, name, LoadSource(body.path, path, parser))

    @router.post(
        "/sample",
        status_code=202,
        summary="Load this app's sample data",
        response_description=ACCEPTED,
        responses={
            **queued("sample"),
            404: {"model": ErrorResponse, "description": "This app ships no sample."},
        },
    )
    async def load_sample(
        name: CollectionName, context: Context, request: Request, response: Response
    ) -> Job:
        """Load the data this app ships with into any collection (loaded again: all duplicates).

        Answers **202** with the job at once.
        """
        sample = solution.sample_file
        if sample is None or not sample.is_file():
            raise NotFound("this app ships no sample data")
        _, parser = _parser(solution, sample.name)
        return await accept(request, response, context, name, LoadSource("sample", sample, parser))

    return router
