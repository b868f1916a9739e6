"""Encoders on ONNX Runtime: each model exported once from its torch form, checked, cached.

On two cores ONNX Runtime runs these networks several times faster than eager torch, above
all for small batches, where torch spends most of its time in Python between layers. The
weights still come only from the installed packages: the ONNX file is derived from them on
first start, compared with torch on a sample input, and written to a cache folder under a
name that carries the weights' digest, so that every later process (and every app of the
launcher) loads it in a fraction of a second without importing torch.
"""

import hashlib
import logging
import os
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Literal

# Opset 17 loads on every onnxruntime since 1.12; nothing in these networks needs a newer one.
OPSET = 17


# "auto": ONNX Runtime if it can be set up here, else torch.
Backend = Literal["auto", "onnx", "torch"]


class OnnxUnavailable(RuntimeError):
    """The ONNX path cannot be set up here; an encoder built with ``backend="auto"`` falls
    back to torch."""


@dataclass(frozen=True)
class Export:
    """How one model becomes a checked ONNX file.

    ``write(path)`` exports the torch model to ``path``; ``check(session)`` runs a sample
    through the exported model and torch and returns the largest absolute difference, which
    must not exceed ``max_diff`` for the file to be kept.
    """

    label: str
    write: Callable[[str], None]
    check: Callable[[Any], float]
    max_diff: float


@dataclass(frozen=True)
class Exported:
    """What an export in this process measured."""

    seconds: float
    max_abs_diff: float


def onnx_or_torch(
    backend: Backend, open_onnx: Callable[[], Any], *, what: str, log: logging.Logger
) -> Any | None:
    """The ONNX Runtime session ``open_onnx`` gives, or None where torch must encode: when
    asked for, or (``auto``) when ONNX Runtime cannot be set up, which ``log`` reports."""
    if backend not in ("auto", "onnx", "torch"):
        raise ValueError(f"backend must be 'auto', 'onnx' or 'torch', not {backend!r}")
    if backend == "torch":
        return None
    try:
        return open_onnx()
    except OnnxUnavailable as error:
        if backend == "onnx":
            raise
        log.warning("ONNX Runtime unavailable, encoding %s with torch: %s", what, error)
        return None


def cached_session(
    path: Path, export: Callable[[], Export], *, threads: int, log: logging.Logger
) -> tuple[Any, Exported | None]:
    """An ONNX Runtime session of the model cached at ``path``, exporting it first if the
    file is missing or unreadable; with what the export measured, if this process made it.

    ``export`` is called only when an export is needed (it loads torch and the model); the
    export is reported on ``log``, the encoder's own logger."""
    onnxruntime = _import_onnxruntime()
    if path.is_file():
        try:
            return session_for(onnxruntime, path, threads), None
        except Exception as error:  # a damaged cache file is rebuilt, not fatal
            log.warning("re-exporting the unreadable ONNX model %s: %s", path, error)
    wanted = export()
    session, exported = _export(onnxruntime, path, wanted, threads)
    log.info(
        "exported %s to %s in %.1f s (max abs diff vs torch %.1e)",
        wanted.label,
        path,
        exported.seconds,
        exported.max_abs_diff,
    )
    return session, exported


def session_for(onnxruntime: Any, path: Path, threads: int) -> Any:
    """A session on ``threads`` cores that does not spin between runs.

    By default ONNX Runtime's threads spin for a while after each run, waiting for the next:
    under concurrent requests that burns the cores the request threads, the database driver
    and Milvus Lite need (measured in benchmarks/README.md, "Queries under concurrent load").
    """
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1  # a chain of layers: nothing worth running side by side
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(
        str(path), sess_options=options, providers=["CPUExecutionProvider"]
    )


def export_torch(
    torch: Any,
    model: Any,
    sample: tuple[Any, ...],
    path: str,
    *,
    inputs: list[str],
    outputs: list[str],
    dynamic_axes: dict[str, dict[int, str]],
) -> None:
    """``torch.onnx.export`` with the TorchScript exporter, which needs onnx but not
    onnxscript (deprecated since torch 2.9: once it is gone this raises, and encoders built
    with ``backend="auto"`` fall back to torch)."""
    with warnings.catch_warnings():
        # The exporter's own deprecation, tracer and folding notes: what decides whether an
        # export is kept is the comparison with torch that follows it (``Export.check``).
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            sample,
            path,
            dynamo=False,
            input_names=inputs,
            output_names=outputs,
            dynamic_axes=dynamic_axes,
            opset_version=OPSET,
        )


def weights_digest(path: Path) -> str:
    """The first 16 hex digits of the SHA-256 of a weights file: part of a cache file's name,
    so that other weights never load a stale export."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def available_cores() -> int:
    """The cores this process may run on (its affinity mask, which containers narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as error:
        raise OnnxUnavailable(
            f"onnxruntime is not installed ({error}); install it with: pip install onnxruntime"
        ) from error
    return onnxruntime


def _export(onnxruntime: Any, path: Path, export: Export, threads: int) -> tuple[Any, Exported]:
    """Export, check against torch, and publish atomically."""
    if find_spec("onnx") is None:
        raise OnnxUnavailable("the ONNX exporter needs onnx; install it with: pip install onnx")
    started = time.perf_counter()
    path.parent.mkdir(parents=True, exist_ok=True)
    # A temporary name in the same folder, renamed when complete: another process sees
    # either no file or a whole, checked one, and two exporting at once both succeed.
    handle, temporary = tempfile.mkstemp(prefix=f"{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        try:
            export.write(temporary)
        except Exception as error:
            raise OnnxUnavailable(f"exporting {export.label} to ONNX failed: {error}") from error
        session = session_for(onnxruntime, Path(temporary), threads)
        diff = export.check(session)
        if not diff <= export.max_diff:
            raise RuntimeError(
                f"the ONNX export of {export.label} disagrees with torch (max abs diff "
                f"{diff:.2e} > {export.max_diff:.0e}); not caching it"
            )
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)
    return session, Exported(time.perf_counter() - started, diff)
