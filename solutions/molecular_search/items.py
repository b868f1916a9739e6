"""A molecule as stored: canonical SMILES, names, and its two fingerprints.

Morgan bits drive similarity (Milvus's vector); pattern bits, kept in SQL, screen
substructure queries. The content key is the canonical SMILES, so the same structure
written two ways is loaded once.
"""

from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import LargeBinary, String, Text

from common.collection import CollectionSpec
from common.loading import ItemCodec
from common.record_store import RecordField
from common.vector_store import Capabilities, VectorIndex
from solutions.molecular_search.chem import FingerprintSpec, as_float, morgan_bits, pattern_bits
from solutions.molecular_search.sources import MoleculeRow

PATTERN_BITS = 2048
MAX_NAME = 300


class Fingerprinter:
    """The app's encoder: Morgan fingerprints, packed (server) or as floats (Milvus Lite)."""

    name = "Morgan fingerprint"
    metric = "JACCARD"

    def __init__(self, spec: FingerprintSpec) -> None:
        self.spec = spec
        self.dim = spec.bits
        self.binary = True  # set by configure() once the connected Milvus is known

    def encode(self, rows: Sequence[MoleculeRow]) -> Sequence[Any]:
        bits = [morgan_bits(row.mol, self.spec) for row in rows]
        return bits if self.binary else np.stack([as_float(b) for b in bits])


def record_fields(spec: FingerprintSpec) -> tuple[RecordField, ...]:
    return (
        RecordField("smiles", Text()),
        RecordField("name", String(MAX_NAME)),
        RecordField("source_id", String(200)),
        RecordField("morgan", LargeBinary(spec.nbytes)),
        RecordField("pattern", LargeBinary(PATTERN_BITS // 8)),
    )


def collection_spec(spec: FingerprintSpec, *, binary: bool) -> CollectionSpec:
    """Binary vectors with JACCARD (exact Tanimoto), or 0/1 floats with COSINE for Lite."""
    index = VectorIndex(
        dim=spec.bits,
        kind="binary" if binary else "float",
        metric="JACCARD" if binary else "COSINE",
        index_type="BIN_FLAT" if binary else "FLAT",
        build_params={},
        search_params={},
    )
    return CollectionSpec(index=index, fields=record_fields(spec))


def configure(encoder: Any, capabilities: Capabilities) -> tuple[CollectionSpec, str]:
    """Binary JACCARD where Milvus has binary vectors; else floats re-ranked exactly."""
    fingerprinter: Fingerprinter = encoder
    fingerprinter.binary = capabilities.binary_vectors
    fingerprinter.metric = "JACCARD" if fingerprinter.binary else "COSINE, re-ranked by Tanimoto"
    if fingerprinter.binary:
        return collection_spec(fingerprinter.spec, binary=True), (
            "exact: BINARY_VECTOR fingerprints searched with JACCARD (BIN_FLAT) on the server"
        )
    return collection_spec(fingerprinter.spec, binary=False), (
        "fallback (Milvus Lite has no binary vectors): a larger pool of candidates by cosine "
        "over float fingerprints, re-ranked by exact Tanimoto"
    )


def molecule_codec(encoder: Any) -> ItemCodec[MoleculeRow]:
    fingerprinter: Fingerprinter = encoder

    def record(row: MoleculeRow) -> dict[str, Any]:
        return {
            "smiles": row.smiles,
            "name": row.name[:MAX_NAME],
            "source_id": row.source_id[:200],
            "morgan": morgan_bits(row.mol, fingerprinter.spec),
            "pattern": pattern_bits(row.mol, PATTERN_BITS),
        }

    return ItemCodec(key=lambda row: row.smiles, record=record, encode=fingerprinter.encode)
