"""The load pipeline every app's jobs run: parse -> dedupe -> encode -> store, in batches.

Encoding batch *n+1* overlaps with storing batch *n* (a second thread), so the encoder,
which dominates the cost, is rarely idle. Items whose content key is already stored are
skipped before encoding, which makes re-running a load cheap as well as harmless.
"""

import contextlib
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from queue import Empty, Full, Queue
from typing import Any, Generic, TypeVar

import numpy as np

from common.collection import Collection, Collections, Entry, content_id
from common.errors import Conflict
from common.jobs import JobContext

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Parsed(Generic[T]):
    """One item read from a source: a value, or the reason it could not be read."""

    item: str
    value: T | None = None
    error: str | None = None


@dataclass(frozen=True)
class ItemCodec(Generic[T]):
    """How an app turns its items into stored entries."""

    key: Callable[[T], str | bytes]
    record: Callable[[T], Mapping[str, Any]]
    encode: Callable[[Sequence[T]], Sequence[Any] | np.ndarray]
    files: Callable[[T], Mapping[str, bytes]] | None = None  # e.g. original and thumbnail


def add_one(
    collections: Collections,
    name: str,
    codec_for: Callable[[Collection], ItemCodec[T]],
    item: T,
) -> tuple[Collection, dict[str, Any]]:
    """Add a single item the way a load would (creating the collection if needed).

    Returns the collection and the stored record; 409 if the same content is stored.
    """
    collection = collections.get_or_create(name)
    codec = codec_for(collection)
    item_id = content_id(codec.key(item))
    conflict = Conflict(f"this item is already stored as id {item_id}")
    if collection.stored_ids([item_id]):
        raise conflict
    files = codec.files(item) if codec.files else {}
    entry = Entry(item_id, codec.encode([item])[0], codec.record(item), files)
    if not collection.add([entry])[0]:
        raise conflict
    return collection, collection.get(item_id)


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def prefetch(items: Iterable[T], ahead: int) -> Iterator[T]:
    """Produce items on a background thread, up to ``ahead`` in advance.

    Lets a slow producer (decoding images) work while the consumer encodes the previous
    batch. Errors raised by the producer are raised to the consumer; closing the consumer
    stops the producer.
    """
    queue: Queue[tuple[str, Any]] = Queue(maxsize=ahead)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        queue.put(("item", item), timeout=0.1)
                        break
                    except Full:
                        continue
                if stop.is_set():
                    return
            queue.put(("end", None))
        except BaseException as error:  # handed to the consumer
            queue.put(("error", error))

    thread = threading.Thread(target=produce, name="prefetch", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = queue.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        while thread.is_alive():
            with contextlib.suppress(Empty):
                queue.get_nowait()
            thread.join(timeout=0.05)


def run_load(
    context: JobContext,
    collection: Collection,
    items: Iterable[Parsed[T]],
    codec: ItemCodec[T],
    batch_size: int,
    add: Callable[[Sequence[Entry]], tuple[list[int], list[int]]] | None = None,
) -> None:
    """Load parsed items into a collection, reporting progress and item errors to the job.
    ``add`` stores a batch (``collection.add`` unless given, e.g. a bulk load's)."""
    store = add or collection.add
    seen: set[int] = set()
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="store") as storer:
            pending: Future[None] | None = None
            iterator = iter(items)
            while True:
                context.check_cancelled()
                with context.timed("parse"):
                    batch = next(batched(iterator, batch_size), None)
                if batch is None:
                    break
                entries = _encode_new(context, collection, batch, codec, seen)
                if pending is not None:
                    pending.result()
                pending = storer.submit(_store, context, store, entries) if entries else None
            if pending is not None:
                pending.result()
    finally:
        flush_after_load(context, collection)


def flush_after_load(context: JobContext, collection: Collection) -> None:
    """The end of every load, also after a cancel or a failure: what was stored should be
    searched quickly. A failed flush is logged, never raised over the load's own outcome."""
    with context.timed("flush"):
        try:
            collection.flush()
        except Exception:
            log.exception("flushing %s failed", collection.physical)


def _encode_new(
    context: JobContext,
    collection: Collection,
    batch: list[Parsed[T]],
    codec: ItemCodec[T],
    seen: set[int],
) -> list[Entry]:
    fresh: list[tuple[int, T]] = []
    duplicates = 0
    for parsed in batch:
        if parsed.error is not None or parsed.value is None:
            context.error(parsed.item, parsed.error or "empty item")
            continue
        item_id = content_id(codec.key(parsed.value))
        if item_id in seen:
            duplicates += 1
            continue
        seen.add(item_id)
        fresh.append((item_id, parsed.value))
    known = collection.stored_ids([item_id for item_id, _ in fresh])
    duplicates += len(known)
    fresh = [(item_id, value) for item_id, value in fresh if item_id not in known]
    context.count(duplicates=duplicates)
    if not fresh:
        return []
    with context.timed("encode"):
        vectors = codec.encode([value for _, value in fresh])
    return [
        Entry(item_id, vector, codec.record(value), codec.files(value) if codec.files else {})
        for (item_id, value), vector in zip(fresh, vectors, strict=True)
    ]


def _store(
    context: JobContext,
    add: Callable[[Sequence[Entry]], tuple[list[int], list[int]]],
    entries: list[Entry],
) -> None:
    with context.timed("store"):
        added, duplicates = add(entries)
    context.count(added=len(added), duplicates=len(duplicates))
