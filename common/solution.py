"""What an app declares to plug its domain into the shared layer."""

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from fastapi import APIRouter
from pydantic import BaseModel

from common.collection import Collection, CollectionSpec
from common.encoders import Encoder
from common.jobs import JobContext
from common.loading import ItemCodec, Parsed
from common.records import Record
from common.settings import Settings
from common.sources import FileParser, Formats
from common.vector_store import Capabilities, VectorIndex

T = TypeVar("T")

# Stores a load's parsed items in a collection: (job, collection, items, the app's encoder,
# the app's settings).
StoreItems = Callable[[JobContext, Collection, Iterable[Parsed[Any]], Any, Any], None]
S = TypeVar("S", bound=Settings)


class Parser(Protocol[T]):
    """Reads what one load names (a file, or a folder of files) into items of an app."""

    def check(self, path: Path) -> None:
        """Raise InvalidInput now for problems with the whole source (nothing gets loaded)."""

    def parse(self, path: Path) -> Iterator[Parsed[T]]:
        """Yield every item, or the reason it could not be read; never raise for one item."""
        ...

    def count(self, path: Path) -> int:
        """How many items ``parse`` will yield (for the job's progress total)."""
        ...


class NoOptions(BaseModel):
    """A load of this app has nothing to choose."""


@dataclass(frozen=True)
class Loader:
    """How files become an app's items, for its load routes and its sample.

    ``suffixes``: the file types a load takes (a folder or several uploads may mix them).
    ``parser``: the parser of one load, given the app's settings and what the load chose.
    ``options``: what one load may choose (form fields of an upload, fields of a path load).
    ``sample``: the data the app ships (a file or a folder), loaded on first start.
    ``store``: how parsed items are stored (``common.loading.run_load`` unless an app's
    items expand into several stored entries, e.g. a video into its frames).
    """

    suffixes: tuple[str, ...]
    parser: Callable[[Any, Any], Parser[Any]]
    options: type[BaseModel] = NoOptions
    sample: Path | None = None
    store: StoreItems | None = None


# The vector index of a collection, from the options it was created with and what the
# connected Milvus can do (e.g. binary vectors on a server, not on Milvus Lite).
IndexFor = Callable[[Mapping[str, Any], Capabilities], VectorIndex]


@dataclass(frozen=True)
class Solution(Generic[S]):
    """One app: identity, settings, record model, index, encoder, loads and its routes.

    ``routers`` is the whole API of the app, composed in its ``app.py`` from the common
    routers (collections, items, loads, jobs, health, media) and its own.
    """

    namespace: str
    title: str
    description: str
    settings_model: type[S]
    record: type[Record]
    index: VectorIndex | IndexFor
    load_encoder: Callable[[S], Encoder]
    loader: Loader
    routers: Sequence[APIRouter]
    default_collection: str
    # How items are stored in a collection (its options may matter, e.g. fingerprint size);
    # not needed when the loader stores items itself (``Loader.store``).
    codec: Callable[[Encoder, Collection], ItemCodec[Any]] | None = None
    # What each collection may choose when it is created: a pydantic model whose defaults
    # are what a collection gets when a load creates it.
    collection_options: type[BaseModel] | None = None
    # A sentence saying how the app searches on the connected Milvus, when that varies.
    mode: Callable[[Capabilities], str] | None = None
    # Modules the app needs; the launcher serves only apps whose modules are installed.
    requires: tuple[str, ...] = ()
    openapi_tags: Sequence[Mapping[str, Any]] = field(default_factory=tuple)
    # The app's page of the web front-end (an ES module); a generic page without it.
    page: Path | None = None
    # Other kinds of vector kept beside each collection (kind: record model and index), e.g.
    # the faces of a video collection: see ``Collection.companion``.
    companions: Mapping[str, tuple[type[Record], VectorIndex]] = field(default_factory=dict)
    # Run at start after the layer's own recovery: what the app must tidy across a
    # collection and its companions after a crash (e.g. faces of a video never stored).
    recover: Callable[[Collection], None] | None = None

    def default_options(self) -> dict[str, Any]:
        """The options a collection gets when nobody chose any (e.g. created by a load)."""
        model = self.collection_options
        return model().model_dump(mode="json") if model is not None else {}

    def spec_for(self, options: Mapping[str, Any], capabilities: Capabilities) -> CollectionSpec:
        """How a collection created with ``options`` is stored on the connected Milvus."""
        index = (
            self.index if isinstance(self.index, VectorIndex) else self.index(options, capabilities)
        )
        return CollectionSpec.of(self.record, index)


def file_loader(*parsers: FileParser[Any], sample: Path | None = None) -> Loader:
    """The loader of an app whose loads are files of fixed formats (CSV, JSON Lines, ...):
    one parser per format, over a file or a folder of them; nothing to choose per load."""
    formats: Formats[Any] = Formats(*parsers)
    return Loader(suffixes=formats.suffixes, parser=lambda _s, _o: formats, sample=sample)
