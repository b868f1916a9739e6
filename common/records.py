"""An app's record model: each field written once, with how it is stored.

An app declares what it stores about an item as one pydantic model whose fields carry a
``Column`` in their ``Annotated`` metadata::

    class Recipe(Record):
        title: Annotated[str, Column(String(200))] = Field(max_length=200)
        cuisine: Annotated[str, Column(String(40), filter="varchar")]
        steps: Annotated[str, Column(Text(), fulltext=True)]

From it the layer derives the SQL columns of every collection of the app, the fields Milvus
mirrors so that searches can filter on them, the fields whose words go into the collection's
full-text index (``common.lexical``), the model ``GET .../items`` answers with (the fields
plus ``id`` and ``created_at``), the columns a CSV must have and the validation of every
row. Fields marked ``shown=False`` are stored for the app's own use (fingerprints, say)
and never answered.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Self

from pydantic import BaseModel, Field, create_model
from pydantic.fields import FieldInfo
from sqlalchemy.types import TypeEngine

from common.record_store import RecordField
from common.vector_store import ScalarKind

if TYPE_CHECKING:
    from common.collection import Match


@dataclass(frozen=True)
class Column:
    """How a record field is stored.

    ``type``: its SQL type. ``filter``: Milvus also holds it (``varchar`` or ``int64``) so
    that searches can filter on it. ``fulltext``: its words are indexed for full-text
    search. ``shown``: part of what the API answers. ``index``: an SQL index on it, for
    records looked up by its value (``Collection.where``).
    """

    type: TypeEngine[Any]
    filter: ScalarKind | None = None
    fulltext: bool = False
    shown: bool = True
    nullable: bool = False
    index: bool = False


class Record(BaseModel):
    """Base of every app's record model; see the module docstring."""


class Hit(BaseModel):
    """What every search result has besides the record's fields: an id and a score."""

    id: str = Field(description="The item's id, derived from its content.")
    score: float

    @classmethod
    def of(cls, match: "Match", **extra: Any) -> Self:
        """A search match as this model (``Hit`` and the app's record): its id, its score to
        four places and the record's fields; ``extra`` sets the model's other fields."""
        fields = {name: match.record[name] for name in cls.model_fields if name in match.record}
        return cls.model_validate(
            {**fields, "id": str(match.id), "score": round(match.score, 4), **extra}
        )


def column_of(info: FieldInfo) -> Column:
    found = [m for m in info.metadata if isinstance(m, Column)]
    if len(found) != 1:
        raise TypeError("every record field needs exactly one Column(...) in its Annotated")
    return found[0]


def columns(model: type[Record]) -> dict[str, Column]:
    return {name: column_of(info) for name, info in model.model_fields.items()}


def record_fields(model: type[Record]) -> tuple[RecordField, ...]:
    """The SQL columns of the app's collections."""
    return tuple(
        RecordField(name, column.type, nullable=column.nullable, index=column.index)
        for name, column in columns(model).items()
    )


def filter_fields(model: type[Record]) -> dict[str, ScalarKind]:
    """The fields Milvus holds next to each vector, to filter searches."""
    return {name: c.filter for name, c in columns(model).items() if c.filter is not None}


def fulltext_fields(model: type[Record]) -> tuple[str, ...]:
    """The fields whose words the collection's full-text index holds, in declaration order."""
    return tuple(name for name, c in columns(model).items() if c.fulltext)


def shown_fields(model: type[Record]) -> dict[str, FieldInfo]:
    return {name: info for name, info in model.model_fields.items() if column_of(info).shown}


def required_fields(model: type[Record]) -> tuple[str, ...]:
    """Fields an input row must have (those without a default): a CSV's required columns."""
    return tuple(name for name, info in model.model_fields.items() if info.is_required())


def stored_model(model: type[Record]) -> type[BaseModel]:
    """What the API answers for a stored item: its shown fields, its id and when it came.

    The id is a string: 63-bit integers lose digits in JavaScript.
    """
    fields: dict[str, Any] = {
        name: (info.annotation, info) for name, info in shown_fields(model).items()
    }
    return create_model(
        f"Stored{model.__name__}",
        __config__=model.model_config,
        id=(str, Field(description="The item's id, derived from its content.")),
        created_at=(datetime, ...),
        **fields,
    )


def stored(model: type[BaseModel], record: dict[str, Any]) -> BaseModel:
    """A stored row as ``model`` (from ``stored_model``)."""
    created = record["created_at"]
    if created.tzinfo is None:  # stored as naive UTC
        created = created.replace(tzinfo=UTC)
    return model.model_validate({**record, "id": str(record["id"]), "created_at": created})
