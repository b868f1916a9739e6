"""What an app declares to plug its domain into the shared layer."""

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from fastapi import APIRouter
from pydantic import BaseModel

from common.collection import Collection, CollectionSpec
from common.encoder import Encoder
from common.loading import ItemCodec, Parsed
from common.settings import Settings
from common.vector_store import Capabilities

T = TypeVar("T", bound=BaseModel)


class Parser(Protocol[T]):  # type: ignore[misc]
    """Reads one file format into items of an app."""

    suffixes: tuple[str, ...]
    media_types: tuple[str, ...]

    def check(self, path: Path) -> None:
        """Raise InvalidInput now for problems with the whole file (nothing gets loaded)."""

    def parse(self, path: Path) -> Iterator[Parsed[T]]:
        """Yield every item, or the reason it could not be read; never raise for one item."""
        ...

    def count(self, path: Path) -> int:
        """How many items ``parse`` will yield (for the job's progress total)."""
        ...


@dataclass(frozen=True)
class Solution(Generic[T]):
    """One app: its identity, encoder, items, storage spec, parsers and extra routes."""

    namespace: str
    title: str
    description: str
    item_model: type[T]
    spec: CollectionSpec | None  # None when spec_for makes each collection's
    load_encoder: Callable[[Settings], Encoder]
    # How items are stored in a collection (its options may matter, e.g. fingerprint size).
    codec: Callable[[Encoder, Collection], ItemCodec[T]]
    parsers: Sequence[Parser[T]]
    default_collection: str
    routers: Sequence[APIRouter] = ()
    sample_file: Path | None = None
    settings_model: type[Settings] = Settings
    # Apps whose items are not JSON (images) or that load differently declare their own
    # add and load routes and switch the standard ones off.
    json_items: bool = True
    standard_loads: bool = True
    own_load_suffixes: tuple[str, ...] = ()  # what the app's own load route takes, if any
    # Options each collection may choose when it is created (a pydantic model whose defaults
    # are what a collection gets when a load creates it), and how options and what the
    # connected Milvus can do (e.g. binary vectors on a server, not on Milvus Lite) make the
    # collection's spec. Without them every collection has ``spec``.
    collection_options: type[BaseModel] | None = None
    spec_for: Callable[[Mapping[str, Any], Capabilities], CollectionSpec] | None = None
    # A sentence saying how the app searches on the connected Milvus, when that varies.
    mode: Callable[[Capabilities], str] | None = None
    # Modules the app needs; the launcher serves only apps whose modules are installed.
    requires: tuple[str, ...] = ()
    # How to read ``sample_file`` when it is not one of ``parsers`` (e.g. a folder of images).
    sample_parser: Callable[[Settings], Parser[T]] | None = None
    openapi_tags: Sequence[Mapping[str, Any]] = field(default_factory=tuple)

    def default_options(self) -> dict[str, Any]:
        """The options a collection gets when nobody chose any (e.g. created by a load)."""
        model = self.collection_options
        return model().model_dump(mode="json") if model is not None else {}

    def parser_for(self, suffix: str) -> Parser[T] | None:
        return next((p for p in self.parsers if suffix.lower() in p.suffixes), None)

    @property
    def suffixes(self) -> list[str]:
        """File suffixes a load accepts."""
        return [s for p in self.parsers for s in p.suffixes] or list(self.own_load_suffixes)
