"""Loads: validate the request, answer 202 with a job at once, do the work off the event loop.

Every app gets the same three routes; its ``Loader`` says which files it reads and how, and
what one load may choose (image search: a label for every image).
"""

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeAlias

from fastapi import APIRouter, Body, File, Form, Request, Response, UploadFile
from pydantic import BaseModel, Field, create_model

from common.access import WriteAccess
from common.context import AppContext, CollectionName, Context
from common.errors import InsufficientStorage, NotFound
from common.files import bytes_below, remove_quietly, resolve_under_roots
from common.http import ErrorResponse, json_example, url_for
from common.jobs import JOB_EXAMPLE, Claimed, Job, JobContext
from common.loading import prefetch, run_load
from common.settings import Settings
from common.solution import Loader, Parser
from common.sources import store_uploads, unsupported

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
        min_length=1,
        max_length=4096,  # PATH_MAX
        description="A file or folder below one of the server's data roots "
        "(`SEARCH_DATA_ROOTS`), relative to a root or absolute. A folder is read recursively.",
        examples=["library.csv"],
    )


class LoadRequest(BaseModel):
    """What a load job reads, as its row in the jobs table keeps it: enough for a worker in
    any process to run it. Uploads and data roots must be the same folders for every
    process of an app (one host, or a shared volume: see docs/scale-out.md)."""

    kind: Literal["upload", "path", "sample"]
    path: str = ""  # the upload's folder or the resolved path; the sample is the worker's own
    options: dict[str, Any] = Field(default_factory=dict)


@dataclass(frozen=True)
class LoadSource:
    """What a load reads: a file or folder, its parser, and what kind of source it is."""

    label: str  # shown as the job's source: the upload's name, the path asked for, "sample"
    path: Path
    parser: Parser[Any]
    kind: Literal["upload", "path", "sample"] = "path"
    options: BaseModel | None = None

    def discard(self) -> None:
        if self.kind == "upload":
            remove_quietly(self.path)

    def request(self) -> LoadRequest:
        options = self.options.model_dump(mode="json") if self.options is not None else {}
        path = "" if self.kind == "sample" else str(self.path)
        return LoadRequest(kind=self.kind, path=path, options=options)


def check_upload_room(settings: Settings, incoming: int) -> None:
    """Refuse (507) an upload that would take the upload folder over its limit.

    Checked before storing: uploads arriving together may overshoot by one request's size.
    """
    waiting = bytes_below(settings.upload_dir)
    if waiting + incoming > settings.max_upload_dir_bytes:
        raise InsufficientStorage(
            f"uploads waiting to be loaded already take {waiting} of the "
            f"{settings.max_upload_dir_bytes} bytes allowed; try again when loads have finished"
        )


def start_load(context: AppContext, name: str, source: LoadSource) -> Job:
    """Check the whole source now (422 before anything is created), then queue the job.

    The job creates the collection if it does not exist yet.
    """
    try:
        source.parser.check(source.path)
        return context.runner.submit(name, source.label, source.request().model_dump())
    except BaseException:
        source.discard()
        raise


def source_of(context: AppContext, job: Claimed) -> LoadSource:
    """What a queued job reads, rebuilt from its row by the worker that claimed it."""
    # Each failure here is the job's error, said as it is (AppError messages are kept).
    if job.request is None:
        raise NotFound("This load was queued by an earlier version of the app; load it again.")
    request = LoadRequest.model_validate(job.request)
    loader = context.solution.loader
    if request.kind == "sample":
        sample = sample_source(context)
        if sample is None:
            raise NotFound("The worker that took this load has no sample data.")
        return sample
    path = Path(request.path)
    if not path.exists():
        where = "SEARCH_UPLOAD_DIR" if request.kind == "upload" else "SEARCH_DATA_ROOTS"
        raise NotFound(
            f"The worker that took this load cannot find {request.kind} {path}: every "
            f"process of an app must share {where} (one host, or a shared volume)."
        )
    options = loader.options.model_validate(request.options)
    return LoadSource(job.source, path, loader.parser(context.settings, options), request.kind)


def run_job(context: AppContext, job: Claimed, progress: JobContext) -> None:
    """Run a load job: the worker's half of ``start_load``."""
    source = source_of(context, job)
    # Created here, not in the request: on a Milvus server that takes seconds.
    collection = context.collections.get_or_create(job.collection)
    progress.set_total(source.parser.count(source.path))
    batch_size = context.settings.job_batch_size
    # Reading (decoding images, parsing rows) runs ahead on its own thread.
    items = prefetch(source.parser.parse(source.path), ahead=2 * batch_size)
    solution = context.solution
    if solution.loader.store is not None:
        solution.loader.store(progress, collection, items, context.encoder, context.settings)
    elif solution.codec is not None:
        codec = solution.codec(context.encoder, collection)
        if not bulk_import(context, progress.total):
            run_load(progress, collection, items, codec, batch_size)
            return
        with collection.importing() as load:
            try:
                run_load(progress, collection, items, codec, batch_size, add=load.add)
                with progress.timed("import"):
                    load.commit()
            except BaseException:
                progress.count(added=-len(load.staged))  # rolled back: none of them stored
                raise
    else:
        raise RuntimeError(f"app {solution.namespace!r} declares no codec and no store")


def bulk_import(context: AppContext, total: int | None) -> bool:
    """Whether a load of ``total`` items bulk-imports its vectors (``SEARCH_BULK_IMPORT_*``)."""
    settings = context.settings
    enabled = context.collections.storage.imports is not None
    return enabled and total is not None and total >= settings.bulk_import_min_items


def discard_upload(job: Claimed) -> None:
    """Remove a job's upload once it has ended (nothing to remove for other sources)."""
    if job.request is not None and job.request.get("kind") == "upload":
        remove_quietly(Path(job.request["path"]))


def sample_source(context: AppContext) -> LoadSource | None:
    """The app's sample, read with the default options (``None`` if it ships none)."""
    loader = context.solution.loader
    if loader.sample is None or not loader.sample.exists():
        return None
    parser = loader.parser(context.settings, loader.options())
    return LoadSource("sample", loader.sample, parser, "sample", loader.options())


def accept(
    request: Request, response: Response, context: AppContext, name: str, source: LoadSource
) -> Job:
    """Queue the load and answer 202 with the job and where to follow it."""
    job = start_load(context, name, source)
    response.headers["Location"] = url_for(request, "get_job", job_id=job.id)
    return job


def loads_router(loader: Loader, *, example: str) -> APIRouter:
    """The load routes of an app whose files ``loader`` reads; ``example`` is a file name
    the docs show being loaded (e.g. ``faq.csv``)."""
    router = APIRouter(prefix="/collections/{name}/loads", tags=["loads"])
    formats = ", ".join(loader.suffixes)
    Options = loader.options  # noqa: N806 - a class
    if TYPE_CHECKING:
        PathBody: TypeAlias = PathLoad
    else:  # the path and what a load may choose, side by side
        PathBody = create_model("PathLoad", __base__=(PathLoad, Options))  # noqa: N806
    option_fields = ", ".join(f"`{f}`" for f in Options.model_fields)
    chose = f" Options: {option_fields}." if option_fields else ""
    errors: dict[int | str, dict[str, Any]] = {
        413: {"model": ErrorResponse, "description": "The upload is over the size limit."},
        415: {"model": ErrorResponse, "description": f"Not one of: {formats}."},
        422: {
            "model": ErrorResponse,
            "description": "The source is empty or unreadable as a whole (wrong encoding, "
            "missing columns, not a zip); nothing was loaded.",
        },
        429: {
            "model": ErrorResponse,
            "description": "Too many loads are waiting (`SEARCH_MAX_QUEUED_JOBS`); try again "
            "after `Retry-After` seconds.",
        },
    }

    @router.post(
        "",
        status_code=202,
        summary=f"Load uploaded files ({formats}) as a job",
        dependencies=[WriteAccess],
        description=f"""Upload one file, or several (repeat `file`); the load runs in the
background as a job. Answers **202** at once with the job and its URL in `Location`;
follow it with `GET /jobs/{{id}}` or its Server-Sent Events at `/jobs/{{id}}/events`. Items
that cannot be read are listed in the job's `errors` and skipped; a file unreadable as a
whole is refused now (422).{chose}

```
curl -F file=@{example} localhost:8000/collections/<collection>/loads
```
""",
        response_description=ACCEPTED,
        responses={
            **queued(example),
            **errors,
            507: {
                "model": ErrorResponse,
                "description": "No room for the upload: the uploads waiting to be loaded "
                "(`SEARCH_MAX_UPLOAD_DIR_BYTES`) or the disk are full.",
            },
        },
    )
    def load_upload(
        name: CollectionName,
        context: Context,
        request: Request,
        response: Response,
        file: Annotated[
            list[UploadFile], File(description=f"One or more files (repeat the field): {formats}")
        ],
        options: Annotated[Options, Form()],  # type: ignore[valid-type]
    ) -> Job:
        uploads = file
        context.runner.check_room()
        check_upload_room(context.settings, sum(u.size or 0 for u in uploads))
        folder = store_uploads(
            [(u.filename or "upload", u.file) for u in uploads],
            context.settings.upload_dir / uuid.uuid4().hex,
            loader.suffixes,
            context.settings.max_upload_bytes,
        )
        label = Path(uploads[0].filename or "upload").name
        source = LoadSource(
            label if len(uploads) == 1 else f"{len(uploads)} files",
            folder,
            loader.parser(context.settings, options),
            "upload",
            options,
        )
        return accept(request, response, context, name, source)

    @router.post(
        "/path",
        status_code=202,
        summary="Load a file or folder that is already on the server, below a data root",
        dependencies=[WriteAccess],
        response_description=ACCEPTED,
        responses={
            **queued(example),
            403: {"model": ErrorResponse, "description": "The path is outside the data roots."},
            404: {"model": ErrorResponse, "description": "No such file or folder."},
            **errors,
        },
    )
    def load_path(
        name: CollectionName,
        body: Annotated[PathBody, Body(examples=[{"path": example}])],
        context: Context,
        request: Request,
        response: Response,
    ) -> Job:
        """Read a file or a folder (recursively) the server already has; only paths below
        `SEARCH_DATA_ROOTS` are allowed.

        Answers **202** with the job at once, as an upload does.
        """
        context.runner.check_room()
        path = resolve_under_roots(body.path, context.settings.data_roots)
        if path.is_file() and path.suffix.lower() not in loader.suffixes:
            raise unsupported(path.name, loader.suffixes)
        options = Options.model_validate(body.model_dump(exclude={"path"}))
        parser = loader.parser(context.settings, options)
        source = LoadSource(body.path, path, parser, "path", options)
        return accept(request, response, context, name, source)

    @router.post(
        "/sample",
        status_code=202,
        summary="Load this app's sample data",
        dependencies=[WriteAccess],
        response_description=ACCEPTED,
        responses={
            **queued("sample"),
            404: {"model": ErrorResponse, "description": "This app ships no sample."},
            429: errors[429],
        },
    )
    def load_sample(
        name: CollectionName, context: Context, request: Request, response: Response
    ) -> Job:
        """Load the data this app ships with into any collection (loaded again: all duplicates).

        Answers **202** with the job at once.
        """
        context.runner.check_room()
        source = sample_source(context)
        if source is None:
            raise NotFound("this app ships no sample data")
        return accept(request, response, context, name, source)

    return router
