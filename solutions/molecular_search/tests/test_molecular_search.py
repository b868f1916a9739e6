"""Molecular search end to end over HTTP on both backend pairs, checked against RDKit."""

import csv
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from rdkit import Chem, DataStructs
from rdkit.Chem import rdFingerprintGenerator

from solutions.molecular_search import chem, screen
from solutions.molecular_search.app import SAMPLE
from solutions.molecular_search.items import PATTERN_BITS
from tests.helpers import error_of, snapshot, wait_for_job

QUERIES = [
    "CC(=O)Oc1ccccc1C(=O)O",  # aspirin
    "CN1C=NC2=C1C(=O)N(C(=O)N2C)C",  # caffeine
    "CC(C)Cc1ccc(cc1)C(C)C(=O)O",  # ibuprofen
    "CN1CCC[C@H]1c1cccnc1",  # nicotine
    "O=C(O)c1ccccc1O",  # salicylic acid
    "c1ccc2c(c1)[nH]c1ccccc12",  # carbazole
    "CCN(CC)CC(=O)Nc1c(C)cccc1C",  # lidocaine
    "NC(=O)c1cccnc1",  # nicotinamide
]
SUBSTRUCTURES = [
    "c1ccccc1C(=O)[OX2H1]",
    "[#6]S(=O)(=O)N",
    "c1ccc2ncccc2c1",
    "C1CCNCC1",
    "[CX3](=O)[NX3;H2]",
    "FC(F)(F)c",
]


def sample_molecules() -> dict[str, Chem.Mol]:
    """Canonical SMILES -> molecule for every valid row of the file (what a load stores)."""
    molecules = {}
    with SAMPLE.open(newline="") as file:
        for row in csv.DictReader(file):
            mol = Chem.MolFromSmiles(row["smiles"])
            if mol is not None:
                molecules.setdefault(Chem.MolToSmiles(mol), mol)
    return molecules


@pytest.fixture(scope="module")
def loaded(shared_molecules: TestClient) -> Iterator[tuple[TestClient, dict[str, Chem.Mol]]]:
    client = shared_molecules
    with SAMPLE.open("rb") as file:
        response = client.post("/collections/drugs/loads", files={"file": ("drugs.csv", file)})
    assert response.status_code == 202
    job = wait_for_job(client, response.json()["id"], timeout=300)
    molecules = sample_molecules()
    assert job["status"] == "succeeded" and job["added"] == len(molecules), job
    assert job["added"] + job["duplicates"] + job["failed"] == job["total"]
    yield client, molecules


def assert_top10_is_brute_force(
    client: TestClient, name: str, molecules: dict[str, Chem.Mol], radius: int = 2, bits: int = 2048
) -> None:
    """Top-10 of every query equals RDKit's BulkTanimotoSimilarity over the same molecules."""
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=bits)
    smiles = list(molecules)
    fingerprints = [generator.GetFingerprint(molecules[s]) for s in smiles]
    for query in QUERIES:
        expected = DataStructs.BulkTanimotoSimilarity(
            generator.GetFingerprint(Chem.MolFromSmiles(query)), fingerprints
        )
        best = sorted(zip(expected, smiles, strict=True), key=lambda p: -p[0])[:10]
        response = client.post(f"/collections/{name}/similar", json={"smiles": query, "top_k": 10})
        assert response.status_code == 200, response.text
        results = response.json()["results"]
        assert [r["similarity"] for r in results] == pytest.approx([s for s, _ in best], abs=1e-4)
        tenth = best[-1][0]
        for result in results:  # same molecules, up to ties at the 10th score
            assert (
                result["smiles"] in {s for score, s in best}
                or abs(result["similarity"] - tenth) < 1e-4
            ), (query, result)


def test_similarity_equals_rdkit_brute_force(loaded) -> None:  # type: ignore[no-untyped-def]
    client, molecules = loaded
    assert_top10_is_brute_force(client, "drugs", molecules)
    ready = client.get("/health/ready").json()
    assert ready["mode"].startswith("exact")
    assert ("in memory" in ready["mode"]) == (ready["milvus_mode"] == "lite")


def test_min_similarity_and_names(loaded) -> None:  # type: ignore[no-untyped-def]
    client, _ = loaded
    body = client.post(
        "/collections/drugs/similar",
        json={"smiles": "CC(=O)Oc1ccccc1C(=O)O", "top_k": 50, "min_similarity": 0.35},
    ).json()
    assert body["results"][0]["name"] == "Aspirin" and body["results"][0]["similarity"] == 1.0
    assert all(r["similarity"] >= 0.35 for r in body["results"]) and len(body["results"]) < 50


def test_substructure_equals_a_brute_force_scan(loaded) -> None:  # type: ignore[no-untyped-def]
    client, molecules = loaded
    for pattern in SUBSTRUCTURES:
        query = Chem.MolFromSmarts(pattern)
        expected = {s for s, mol in molecules.items() if mol.HasSubstructMatch(query)}
        response = client.post(
            "/collections/drugs/substructure", json={"query": pattern, "limit": 1000}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert not body["truncated"] and body["screened"] >= len(expected)
        assert {r["smiles"] for r in body["results"]} == expected, pattern
        if body["results"]:
            first = body["results"][0]
            assert first["atoms"] and "highlight=" in first["depiction_url"]
            svg = client.get(first["depiction_url"])
            assert svg.status_code == 200 and svg.headers["content-type"] == "image/svg+xml"
            assert svg.text.startswith("<svg") and "</svg>" in svg.text
    limited = client.post(
        "/collections/drugs/substructure", json={"query": "c1ccccc1", "limit": 5}
    ).json()
    assert len(limited["results"]) == 5 and limited["truncated"]


def test_concurrent_substructure_searches_verify_as_many_at_once_as_there_are_cores(
    loaded, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """RDKit's matching holds the GIL: requests verifying side by side only slow each other,
    so at most one per core verifies at a time; each still gets its own full answer."""
    client, _ = loaded
    bodies = [{"query": pattern, "limit": 1000} for pattern in SUBSTRUCTURES * 2]
    alone = [client.post("/collections/drugs/substructure", json=b).json() for b in bodies]
    inside, most, lock = 0, 0, threading.Lock()
    real = chem.has_substructure

    def counted(mol: Chem.Mol, query: Chem.Mol) -> bool:
        nonlocal inside, most
        with lock:
            inside += 1
            most = max(most, inside)
        time.sleep(0.0002)  # lets the other requests' threads run meanwhile
        try:
            return real(mol, query)
        finally:
            with lock:
                inside -= 1

    monkeypatch.setattr(chem, "has_substructure", counted)
    with ThreadPoolExecutor(len(bodies)) as pool:
        together = list(
            pool.map(
                lambda b: client.post("/collections/drugs/substructure", json=b).json(), bodies
            )
        )
    assert together == alone
    assert 1 <= most <= len(os.sched_getaffinity(0))


def test_a_screen_keeps_a_bounded_number_of_parsed_molecules(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A screen that lets most of a big collection through must not keep every molecule it
    parsed (about 29 KiB each); those not kept are parsed again, the same."""
    monkeypatch.setattr(screen, "KEPT_MOLECULES", 3)
    smiles = ["CCO", "c1ccccc1", "CC(=O)O", "CCN", "C1CCNCC1", "OC(=O)c1ccccc1", "CS(=O)(=O)N"]
    patterns = [chem.pattern_bits(chem.parse_smiles(s), PATTERN_BITS) for s in smiles]
    held = screen.Screen(
        ids=np.arange(len(smiles), dtype=np.int64),
        patterns=chem.PackedBits(patterns, PATTERN_BITS // 8),
        smiles=smiles,
    )
    for _ in range(2):
        parsed = [Chem.MolToSmiles(held.mol(index)) for index in range(len(smiles))]
        assert parsed == [Chem.CanonSmiles(s) for s in smiles]
        assert sorted(held.mols) == [0, 1, 2]


def test_same_structure_twice_is_one_item(shared_molecules: TestClient, tmp_path: Path) -> None:
    client = shared_molecules
    path = tmp_path / "spellings.smi"
    path.write_text(
        "# ethanol three ways, then acetic acid\nCCO ethanol\nOCC\nC(O)C alcohol\nCC(=O)O acetic\n"
    )
    with path.open("rb") as file:
        job = client.post("/collections/spellings/loads", files={"file": ("s.smi", file)}).json()
    job = wait_for_job(client, job["id"])
    assert job["added"] == 2 and job["duplicates"] == 2, job
    created = client.post("/collections/spellings/items", json={"smiles": "C(C)O"})
    assert created.status_code == 409


def test_broken_sdf_record_and_bad_input(shared_molecules: TestClient, tmp_path: Path) -> None:
    client = shared_molecules
    blocks = [Chem.MolToMolBlock(Chem.MolFromSmiles(s)) for s in ("CCN", "c1ccncc1", "CCCl")]
    blocks[1] = blocks[1].replace("  6  6", "  6  9", 1)  # a count line that lies
    sdf = "".join(f"mol{i}\n{b.split(chr(10), 1)[1]}$$$$\n" for i, b in enumerate(blocks))
    path = tmp_path / "three.sdf"
    path.write_text(sdf)
    with path.open("rb") as file:
        job = client.post("/collections/sdf/loads", files={"file": ("three.sdf", file)}).json()
    job = wait_for_job(client, job["id"])
    assert job["added"] == 2 and job["failed"] == 1, job
    assert job["errors"][0]["item"] == "record 2"

    before = snapshot(client)
    long_smiles = "C" * 10_000
    cases = [
        (client.post("/collections/sdf/similar", json={"smiles": "C1CC("}), 422, "SMILES"),
        (client.post("/collections/sdf/similar", json={"smiles": "c1cccc1"}), 422, "kekulize"),
        (client.post("/collections/sdf/similar", json={"smiles": ""}), 422, "at least 1"),
        (client.post("/collections/sdf/similar", json={"smiles": long_smiles}), 422, "1000"),
        (client.post("/collections/sdf/substructure", json={"query": "[C;X9"}), 422, "SMARTS"),
        (client.post("/collections/sdf/similar", json={"smiles": "CCO", "top_k": 0}), 422, ""),
        (client.post("/collections/nope/similar", json={"smiles": "CCO"}), 404, ""),
        (client.post("/collections/sdf/items", json={"smiles": "N(C)(C)(C)(C)C"}), 422, "valence"),
        (
            client.post(
                "/collections/sdf/loads",
                files={"file": ("x.csv", b"structure,name\nCCO,ethanol\n")},
            ),
            422,
            "smiles",
        ),
        (client.post("/collections/sdf/loads", files={"file": ("x.txt", b"CCO")}), 415, ""),
        (client.get("/collections/sdf/items/1/depiction"), 404, ""),
    ]
    for response, status, words in cases:
        assert response.status_code == status, (status, response.text)
        assert words.lower() in error_of(response)["message"].lower(), response.text
    assert snapshot(client) == before
    valid = client.post("/molecules/validate", json={"smiles": "c1cccc1"}).json()
    assert not valid["valid"] and "kekulize" in valid["reason"].lower()


def test_substructure_sees_a_dropped_and_recreated_collection(shared_molecules: TestClient) -> None:
    client = shared_molecules
    ring = {"query": "c1ccccc1", "limit": 10}
    assert client.post("/collections/again/items", json={"smiles": "c1ccccc1O"}).status_code == 201
    first = client.post("/collections/again/substructure", json=ring).json()["results"]
    assert [r["smiles"] for r in first] == ["Oc1ccccc1"]
    assert client.delete("/collections/again").status_code == 204
    assert client.post("/collections/again/items", json={"smiles": "c1ccccc1N"}).status_code == 201
    second = client.post("/collections/again/substructure", json=ring).json()["results"]
    assert [r["smiles"] for r in second] == ["Nc1ccccc1"]


def test_similarity_follows_adds_deletes_and_drops(shared_molecules: TestClient) -> None:
    """What a similarity search finds changes with the collection (on Milvus Lite, the
    in-memory scan is read again); mirror-image molecules share a Morgan fingerprint (it
    ignores chirality), so they tie at 1.0."""
    client = shared_molecules
    alanine = {"smiles": "C[C@H](N)C(=O)O", "top_k": 10}

    def found() -> list[tuple[str, float]]:
        response = client.post("/collections/scan/similar", json=alanine)
        assert response.status_code == 200, response.text
        return [(r["smiles"], r["similarity"]) for r in response.json()["results"]]

    added = {}
    for smiles in ["C[C@H](N)C(=O)O", "C[C@@H](N)C(=O)O", "CCO"]:
        response = client.post("/collections/scan/items", json={"smiles": smiles})
        assert response.status_code == 201, response.text
        added[smiles] = response.json()["id"]
    first = found()
    assert {s for s, score in first[:2]} == {"C[C@H](N)C(=O)O", "C[C@@H](N)C(=O)O"}
    assert [score for _, score in first[:2]] == [1.0, 1.0]
    assert first[2][0] == "CCO" and first[2][1] < 0.2 and len(first) == 3
    deleted = client.delete(f"/collections/scan/items/{added['C[C@@H](N)C(=O)O']}")
    assert deleted.status_code == 204
    assert [s for s, _ in found()] == ["C[C@H](N)C(=O)O", "CCO"]
    assert client.post("/collections/scan/items", json={"smiles": "CC(N)C(=O)O"}).status_code == 201
    assert {s for s, score in found() if score == 1.0} == {"C[C@H](N)C(=O)O", "CC(N)C(=O)O"}
    assert client.delete("/collections/scan").status_code == 204
    gone = client.post("/collections/scan/similar", json=alanine)
    assert gone.status_code == 404 and error_of(gone)["code"] == "not_found"
    assert client.post("/collections/scan/items", json={"smiles": "CCN"}).status_code == 201
    assert [s for s, _ in found()] == ["CCN"]
    assert client.delete("/collections/scan").status_code == 204


def load_sample_into(client: TestClient, name: str) -> None:
    response = client.post(f"/collections/{name}/loads/sample")
    assert response.status_code == 202, response.text
    assert wait_for_job(client, response.json()["id"], timeout=300)["status"] == "succeeded"


def test_fingerprint_chosen_per_collection(shared_molecules: TestClient) -> None:
    client = shared_molecules
    options = {"radius": 3, "bits": 1024}
    created = client.post("/collections", json={"name": "ecfp6", "options": options})
    assert created.status_code == 201, created.text
    assert created.json()["dim"] == 1024
    assert created.json()["options"] | options == created.json()["options"]
    load_sample_into(client, "ecfp6")
    assert_top10_is_brute_force(client, "ecfp6", sample_molecules(), radius=3, bits=1024)
    added = client.post("/collections/ecfp6/items", json={"smiles": "CCCCCCCCCCCCO", "name": "x"})
    assert added.status_code == 201, added.text
    found = client.post("/collections/ecfp6/similar", json={"smiles": "CCCCCCCCCCCCO"}).json()
    assert {"name": "x", "similarity": 1.0} in [
        {"name": r["name"], "similarity": r["similarity"]} for r in found["results"]
    ]
    described = client.get("/collections/ecfp6").json()
    assert described["options"]["radius"] == 3 and described["dim"] == 1024
    # A collection created by adding to it (or by a load) gets the defaults: ECFP4, 2048 bits.
    assert client.post("/collections/implicit/items", json={"smiles": "CCO"}).status_code == 201
    assert client.get("/collections/implicit").json()["options"]["bits"] == 2048


def test_ivf_index_on_a_server_refused_on_lite(shared_molecules: TestClient) -> None:
    client = shared_molecules
    lite = client.get("/health/ready").json()["milvus_mode"] == "lite"
    ivf = {"index": "BIN_IVF_FLAT", "nlist": 16, "nprobe": 16}
    before = snapshot(client)
    response = client.post("/collections", json={"name": "ivf", "options": ivf})
    if lite:
        assert response.status_code == 422
        assert error_of(response)["code"] == "unsupported_feature"
        assert "Milvus server" in error_of(response)["message"]
        assert snapshot(client) == before
        return
    assert response.status_code == 201, response.text
    assert response.json()["index_type"] == "BIN_IVF_FLAT"
    load_sample_into(client, "ivf")
    # nprobe = nlist searches every cluster: the same results as the exact BIN_FLAT.
    assert_top10_is_brute_force(client, "ivf", sample_molecules())


@pytest.mark.parametrize(
    "options",
    [
        {"bits": 1001},  # not a multiple of 8
        {"bits": 16},
        {"radius": 0},
        {"radius": 9},
        {"index": "HNSW"},
        {"nlist": 0},
        {"index": "BIN_IVF_FLAT", "nlist": 16, "nprobe": 32},  # more clusters probed than exist
        {"fingerprint": "maccs"},  # unknown option
        "ecfp4",
    ],
)
def test_bad_collection_options(shared_molecules: TestClient, options: object) -> None:
    client = shared_molecules
    storage = client.app.state.context.storage  # type: ignore[attr-defined]
    response = client.post("/collections", json={"name": "bad_options", "options": options})
    assert response.status_code == 422
    assert error_of(response)["code"] == "invalid_input", response.text
    # A refused create can only have left a collection behind: there is none, in either store.
    assert client.get("/collections/bad_options").status_code == 404
    assert "molecules__bad_options" not in storage.vectors.client.list_collections()
    assert not storage.records.table_exists("molecules__bad_options")
