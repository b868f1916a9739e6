"""A molecule as stored: canonical SMILES, names, and its two fingerprints.

Morgan bits drive similarity (Milvus's vector, see ``fingerprints.py``); pattern bits, kept
in SQL, screen substructure queries. The content key is the canonical SMILES, so the same
structure written two ways is loaded once.
"""

from collections.abc import Sequence
from typing import Annotated, Any

import numpy as np
from pydantic import ConfigDict, Field
from sqlalchemy import LargeBinary, String, Text

from common import Collection, Column, ItemCodec, Record
from solutions.molecular_search.chem import morgan_bits, pattern_bits
from solutions.molecular_search.fingerprints import MAX_BITS, Fingerprinter, options_of
from solutions.molecular_search.sources import MoleculeRow

PATTERN_BITS = 2048
MAX_NAME = 300
MAX_SOURCE_ID = 200


class Molecule(Record):
    """What is shown of a stored molecule."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"smiles": "CC(=O)Oc1ccccc1C(=O)O", "name": "Aspirin", "source_id": "CHEMBL25"}
            ]
        }
    )

    smiles: Annotated[str, Column(Text())] = Field(description="Canonical SMILES.")
    name: Annotated[str, Column(String(MAX_NAME))]
    source_id: Annotated[str, Column(String(MAX_SOURCE_ID))] = Field(
        description="The identifier the source gave it, if any."
    )


class MoleculeRecord(Molecule):
    """What is stored: the molecule and its two fingerprints, kept for the app's own use."""

    morgan: Annotated[bytes, Column(LargeBinary(MAX_BITS // 8), shown=False)]
    pattern: Annotated[bytes, Column(LargeBinary(PATTERN_BITS // 8), shown=False)]


def molecule_codec(encoder: Any, collection: Collection) -> ItemCodec[MoleculeRow]:
    """How molecules are stored in ``collection``: with the fingerprint it was created with."""
    fingerprinter: Fingerprinter = encoder
    spec = options_of(collection).fingerprint
    binary = collection.spec.index.kind == "binary"

    def record(row: MoleculeRow) -> dict[str, Any]:
        return MoleculeRecord(
            smiles=row.smiles,
            name=row.name[:MAX_NAME],
            source_id=row.source_id[:MAX_SOURCE_ID],
            morgan=morgan_bits(row.mol, spec),
            pattern=pattern_bits(row.mol, PATTERN_BITS),
        ).model_dump()

    def encode(rows: Sequence[MoleculeRow]) -> np.ndarray | Sequence[Any]:
        return fingerprinter.encode(rows, spec, binary=binary)

    return ItemCodec(key=lambda row: row.smiles, record=record, encode=encode)
