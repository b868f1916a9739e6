"""Micro-batching: the encoder calls and searches of concurrent requests gathered into one.

On two cores, sixteen requests that each run the encoder on one input fight over the cores
and all finish late; the same sixteen inputs as one batch cost little more than one.
``BatchingEncoder`` wraps an app's encoder. A call with a few inputs (a query) waits while
the calls that arrive within ``max_wait`` seconds join it, up to ``max_batch`` inputs; one
worker thread encodes them together and hands each caller its own rows. A call as large as
a batch (a load's) runs at once on its own thread, as before. When a batch fails, each of
its calls is encoded alone, so one bad input fails its own request only. When more than
``max_waiting`` inputs are already waiting, a call is refused at once with ``Overloaded``
(503, with Retry-After) rather than queued without bound.

An app's encoder made of several models (one per collection, or one for queries among
others) says which to batch with a method ``batched(wrap)`` returning itself with those
models wrapped (or itself unchanged, where batching does not pay); a plain encoder is
wrapped whole.

``Gathering`` is the machinery underneath, for any call that costs less made once for many
inputs than once per input: the vector store sends concurrent one-vector Milvus searches
of the same collection, limit and filter as one search (``common/vector_store.py``).
"""

import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from common.encoders import Encoder
from common.errors import Overloaded

# (key, inputs) -> one output per input: a row of an array, or anything else in a sequence
Outputs = np.ndarray | Sequence[Any]
Run = Callable[[Hashable, list[Any]], Outputs]


@dataclass
class _Call:
    key: Hashable
    inputs: list[Any]
    result: "Future[Outputs]" = field(default_factory=Future)


class Gathering:
    """Concurrent calls of ``run(key, inputs)`` with equal keys made as one call.

    ``submit`` blocks until its call's outputs are back. One worker thread takes the first
    waiting call and the calls with the same key arriving within ``max_wait`` seconds (all
    those already waiting when ``max_wait`` is 0), up to ``max_batch`` inputs, and runs them
    together; calls with other keys keep their turn. When a gathered run fails, each of its
    calls runs alone, so one bad input fails its own call only. Beyond ``max_waiting``
    waiting inputs a call is refused with ``Overloaded`` (503).
    """

    def __init__(
        self,
        run: Run,
        *,
        name: str,
        max_batch: int = 32,
        max_wait: float = 0.002,
        max_waiting: int = 256,
    ) -> None:
        self.run, self.name = run, name
        self.max_batch, self.max_wait, self.max_waiting = max_batch, max_wait, max_waiting
        self.batches = 0  # runs made by the worker
        self._calls: deque[_Call] = deque()
        self._waiting = 0  # inputs in ``_calls``
        self._changed = threading.Condition()
        self._closed = False
        self._worker = threading.Thread(target=self._work, name=f"batch {name}", daemon=True)
        self._worker.start()

    @property
    def waiting(self) -> int:
        """Inputs waiting for the worker."""
        return self._waiting

    def submit(self, key: Hashable, inputs: Sequence[Any]) -> Outputs:
        call = _Call(key, list(inputs))
        with self._changed:
            if self._closed:
                raise RuntimeError(f"the {self.name} batching is closed")
            if self._waiting + len(call.inputs) > self.max_waiting:
                raise Overloaded(
                    f"the server is busy ({self._waiting} inputs are waiting for the "
                    f"{self.name}): try again in a moment"
                )
            self._calls.append(call)
            self._waiting += len(call.inputs)
            self._changed.notify()
        return call.result.result()

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify()
        self._worker.join(timeout=30)

    def _work(self) -> None:
        while batch := self._next_batch():
            try:
                self._run(batch)
            except Exception as error:  # the worker must outlive any batch
                for call in batch:
                    if not call.result.done():
                        call.result.set_exception(error)

    def _next_batch(self) -> list[_Call]:
        """The first waiting call and those of its key that join it (see the class); empty
        once closed."""
        with self._changed:
            while not self._calls:
                if self._closed:
                    return []
                self._changed.wait()
            batch = [self._calls.popleft()]
            size = len(batch[0].inputs)
            deadline = time.monotonic() + self.max_wait
            while size < self.max_batch:
                call, fits = self._take(batch[0].key, self.max_batch - size)
                if not fits:
                    break
                if call is None:
                    left = deadline - time.monotonic()
                    if left <= 0 or self._closed:
                        break
                    self._changed.wait(left)
                    continue
                batch.append(call)
                size += len(call.inputs)
            self._waiting -= size
            return batch

    def _take(self, key: Hashable, room: int) -> tuple[_Call | None, bool]:
        """The next waiting call of ``key`` if it fits in ``room`` inputs; (None, False) if
        it does not (it waits for the next batch), (None, True) if none is waiting."""
        for position, call in enumerate(self._calls):
            if call.key == key:
                if len(call.inputs) > room:
                    return None, False
                del self._calls[position]
                return call, True
        return None, True

    def _run(self, batch: list[_Call]) -> None:
        self.batches += 1
        inputs = [item for call in batch for item in call.inputs]
        try:
            outputs = self.run(batch[0].key, inputs)
        except Exception as error:
            if len(batch) == 1:
                batch[0].result.set_exception(error)
                return
            for call in batch:  # each alone: only the bad one fails
                self._run([call])
            return
        if len(outputs) != len(inputs):
            raise RuntimeError(
                f"the {self.name} answered {len(outputs)} results for {len(inputs)} inputs"
            )
        start = 0
        for call in batch:
            end = start + len(call.inputs)
            call.result.set_result(outputs[start:end])
            start = end


class BatchingEncoder:
    """An ``Encoder`` that encodes concurrent calls as one batch (see the module)."""

    def __init__(
        self,
        inner: Encoder,
        *,
        max_batch: int = 32,
        max_wait: float = 0.002,
        max_waiting: int = 256,
    ) -> None:
        self.inner = inner
        self.name, self.dim, self.metric = inner.name, inner.dim, inner.metric
        self.max_batch = max_batch
        self._gathering = Gathering(
            lambda _key, inputs: inner.encode(inputs),
            name=f"{inner.name} encoder",
            max_batch=max_batch,
            max_wait=max_wait,
            max_waiting=max_waiting,
        )

    @property
    def batches(self) -> int:
        """Encoder calls made by the worker."""
        return self._gathering.batches

    @property
    def waiting(self) -> int:
        """Inputs waiting to be encoded."""
        return self._gathering.waiting

    def __getattr__(self, name: str) -> Any:  # what else the app's encoder offers
        return getattr(self.inner, name)

    def encode(self, inputs: Sequence[Any], /) -> np.ndarray | Sequence[Any]:
        if len(inputs) >= self.max_batch:
            return self.inner.encode(inputs)
        return self._gathering.submit(None, inputs)

    def close(self) -> None:
        self._gathering.close()


class Batching:
    """The batching wrappers of one running app, made with its settings, closed with it."""

    def __init__(self, *, max_batch: int, max_wait: float, max_waiting: int) -> None:
        self.max_batch, self.max_wait, self.max_waiting = max_batch, max_wait, max_waiting
        self.made: list[BatchingEncoder] = []

    def wrap(self, encoder: Encoder) -> BatchingEncoder:
        batching = BatchingEncoder(
            encoder,
            max_batch=self.max_batch,
            max_wait=self.max_wait,
            max_waiting=self.max_waiting,
        )
        self.made.append(batching)
        return batching

    def apply(self, encoder: Encoder) -> Encoder:
        """The app's encoder with its query-time models batched (see the module)."""
        own: Callable[[Callable[[Encoder], Encoder]], Encoder] | None = getattr(
            encoder, "batched", None
        )
        return own(self.wrap) if own is not None else self.wrap(encoder)

    def close(self) -> None:
        for batching in self.made:
            batching.close()
