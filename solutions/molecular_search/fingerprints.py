"""The molecular app's encoder: Morgan fingerprints, and how a collection stores them.

Each collection chooses its fingerprint (radius, bits) and, on a Milvus server, its index
when it is created (``FingerprintOptions``); a load that creates one uses the defaults. On a
server fingerprints are binary vectors searched with JACCARD (exact Tanimoto). Milvus Lite
has none: it stores them as 0/1 floats, and the app searches the packed bits kept in SQL by
an exact scan in memory instead (``similarity_scan.py``).
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from common import Capabilities, Collection, Encoder, UnsupportedFeature, VectorIndex
from solutions.molecular_search.chem import DEFAULT_SPEC, FingerprintSpec, as_float, morgan_bits
from solutions.molecular_search.sources import MoleculeRow

MAX_BITS = 8192


class FingerprintOptions(BaseModel):
    """What a molecule collection is built with; chosen once, when it is created."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"radius": 2, "bits": 2048, "index": "BIN_FLAT"}]},
    )

    radius: int = Field(2, ge=1, le=4, description="Morgan radius: 2 is ECFP4, 3 is ECFP6.")
    bits: int = Field(2048, ge=64, le=MAX_BITS, multiple_of=8, description="Fingerprint length.")
    index: Literal["BIN_FLAT", "BIN_IVF_FLAT"] = Field(
        "BIN_FLAT",
        description="Milvus server only. BIN_FLAT compares every fingerprint (exact); "
        "BIN_IVF_FLAT clusters them and searches the `nprobe` nearest clusters (faster on "
        "large collections, approximate). Milvus Lite has no binary vectors: it refuses "
        "BIN_IVF_FLAT, and the app scans every fingerprint in memory (exact).",
    )
    nlist: int = Field(1024, ge=1, le=65536, description="BIN_IVF_FLAT: number of clusters.")
    nprobe: int = Field(
        64, ge=1, le=65536, description="BIN_IVF_FLAT: clusters searched per query."
    )

    @model_validator(mode="after")
    def _probe_at_most_every_cluster(self) -> "FingerprintOptions":
        if self.nprobe > self.nlist:
            raise ValueError(f"nprobe ({self.nprobe}) cannot exceed nlist ({self.nlist})")
        return self

    @property
    def fingerprint(self) -> FingerprintSpec:
        return FingerprintSpec(radius=self.radius, bits=self.bits)


def options_of(collection: Collection) -> FingerprintOptions:
    return FingerprintOptions.model_validate(collection.options)


class Fingerprinter:
    """The app's encoder: Morgan fingerprints, packed (server) or as 0/1 floats (Milvus Lite)."""

    name = "Morgan fingerprint"
    metric = "Tanimoto"
    dim = FingerprintOptions().bits  # of the default collection; each may choose its own

    def batched(self, _wrap: Callable[[Encoder], Encoder]) -> "Fingerprinter":
        """Not batched: a fingerprint takes microseconds, less than waiting for a batch."""
        return self

    def encode(
        self,
        rows: Sequence[MoleculeRow],
        spec: FingerprintSpec = DEFAULT_SPEC,
        *,
        binary: bool = True,
    ) -> np.ndarray | Sequence[Any]:
        bits = [morgan_bits(row.mol, spec) for row in rows]
        return bits if binary else np.stack([as_float(b) for b in bits])


def fingerprint_index(options: Mapping[str, Any], capabilities: Capabilities) -> VectorIndex:
    """Binary vectors with JACCARD (exact Tanimoto) on a server; 0/1 floats on Lite, stored
    with every item like any vector but not searched (the in-memory scan is)."""
    chosen = FingerprintOptions.model_validate(options)
    fingerprint = chosen.fingerprint
    if capabilities.binary_vectors:
        ivf = chosen.index == "BIN_IVF_FLAT"
        return VectorIndex(
            dim=fingerprint.bits,
            kind="binary",
            metric="JACCARD",
            index_type=chosen.index,
            build_params={"nlist": chosen.nlist} if ivf else {},
            search_params={"nprobe": chosen.nprobe} if ivf else {},
        )
    if chosen.index != "BIN_FLAT":
        raise UnsupportedFeature(
            f"{chosen.index} needs a Milvus server; on Milvus Lite, which has no binary "
            "vectors, every fingerprint is scanned in memory (leave index as BIN_FLAT)"
        )
    return VectorIndex(
        dim=fingerprint.bits,
        kind="float",
        metric="COSINE",
        index_type="FLAT",
        build_params={},
        search_params={},
    )


def search_mode(capabilities: Capabilities) -> str:
    if capabilities.binary_vectors:
        return (
            "exact: BINARY_VECTOR fingerprints searched with JACCARD on the server "
            "(BIN_FLAT; BIN_IVF_FLAT where a collection chose it)"
        )
    return (
        "exact: every fingerprint scanned in memory by Tanimoto (Milvus Lite has no binary vectors)"
    )
