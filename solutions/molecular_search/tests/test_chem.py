"""Chemistry and molecule sources for molecular search, on real drug structures."""

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from rdkit import Chem, DataStructs
from rdkit.Chem import rdFingerprintGenerator
from rdkit.Chem.Scaffolds import MurckoScaffold

from common.errors import InvalidInput
from solutions.molecular_search import chem
from solutions.molecular_search.sources import MoleculeSource

# Common drugs, written from their well-known structures (not copied from a data set).
DRUGS = {
    "aspirin": "CC(=O)Oc1ccccc1C(=O)O",
    "caffeine": "Cn1cnc2c1c(=O)n(C)c(=O)n2C",
    "ibuprofen": "CC(C)Cc1ccc(cc1)C(C)C(=O)O",
    "paracetamol": "CC(=O)Nc1ccc(O)cc1",
    "naproxen": "COc1ccc2cc(ccc2c1)C(C)C(=O)O",
    "diclofenac": "OC(=O)Cc1ccccc1Nc1c(Cl)cccc1Cl",
    "metformin": "CN(C)C(=N)N=C(N)N",
    "nicotine": "CN1CCC[C@H]1c1cccnc1",
    "morphine": "CN1CC[C@]23c4c5ccc(O)c4O[C@H]2[C@@H](O)C=C[C@H]3[C@H]1C5",
    "diazepam": "CN1C(=O)CN=C(c2ccccc2)c2cc(Cl)ccc12",
    "fluoxetine": "CNCCC(Oc1ccc(cc1)C(F)(F)F)c1ccccc1",
    "sertraline": "CN[C@H]1CC[C@@H](c2ccc(Cl)c(Cl)c2)c2ccccc12",
    "atorvastatin": (
        "CC(C)c1c(C(=O)Nc2ccccc2)c(-c2ccccc2)c(-c2ccc(F)cc2)n1CC[C@@H](O)C[C@@H](O)CC(=O)O"
    ),
    "omeprazole": "COc1ccc2[nH]c(nc2c1)S(=O)Cc1ncc(C)c(OC)c1C",
    "losartan": "CCCCc1nc(Cl)c(CO)n1Cc1ccc(cc1)-c1ccccc1-c1nn[nH]n1",
    "amlodipine": "CCOC(=O)C1=C(COCCN)NC(C)=C(C1c1ccccc1Cl)C(=O)OC",
    "warfarin": "CC(=O)CC(c1ccccc1)c1c(O)c2ccccc2oc1=O",
    "ciprofloxacin": "OC(=O)c1cn(C2CC2)c2cc(N3CCNCC3)c(F)cc2c1=O",
    "amoxicillin": "CC1(C)S[C@@H]2[C@H](NC(=O)[C@H](N)c3ccc(O)cc3)C(=O)N2[C@H]1C(=O)O",
    "penicillin G": "CC1(C)S[C@@H]2[C@H](NC(=O)Cc3ccccc3)C(=O)N2[C@H]1C(=O)O",
    "sildenafil": "CCCc1nn(C)c2c1nc([nH]c2=O)-c1cc(ccc1OCC)S(=O)(=O)N1CCN(C)CC1",
    "imatinib": "Cc1ccc(NC(=O)c2ccc(CN3CCN(C)CC3)cc2)cc1Nc1nccc(n1)-c1cccnc1",
    "gefitinib": "COc1cc2ncnc(Nc3ccc(F)c(Cl)c3)c2cc1OCCCN1CCOCC1",
    "tamoxifen": "CC/C(=C(\\c1ccccc1)c1ccc(OCCN(C)C)cc1)c1ccccc1",
    "haloperidol": "OC1(CCN(CCCC(=O)c2ccc(F)cc2)CC1)c1ccc(Cl)cc1",
    "chlorpromazine": "CN(C)CCCN1c2ccccc2Sc2ccc(Cl)cc12",
    "lidocaine": "CCN(CC)CC(=O)Nc1c(C)cccc1C",
    "propranolol": "CC(C)NCC(O)COc1cccc2ccccc12",
    "metoprolol": "COCCc1ccc(OCC(O)CNC(C)C)cc1",
    "salbutamol": "CC(C)(C)NCC(O)c1ccc(O)c(CO)c1",
    "furosemide": "NS(=O)(=O)c1cc(C(=O)O)c(NCc2ccco2)cc1Cl",
    "hydrochlorothiazide": "NS(=O)(=O)c1cc2c(cc1Cl)NCNS2(=O)=O",
    "captopril": "C[C@H](CS)C(=O)N1CCC[C@H]1C(=O)O",
    "enalapril": "CCOC(=O)[C@H](CCc1ccccc1)N[C@@H](C)C(=O)N1CCC[C@H]1C(=O)O",
    "clopidogrel": "COC(=O)[C@H](c1ccccc1Cl)N1CCc2sccc2C1",
    "celecoxib": "Cc1ccc(cc1)-c1cc(nn1-c1ccc(cc1)S(N)(=O)=O)C(F)(F)F",
    "venlafaxine": "COc1ccc(cc1)C(CN(C)C)C1(O)CCCCC1",
    "citalopram": "CN(C)CCCC1(OCc2cc(ccc12)C#N)c1ccc(F)cc1",
    "risperidone": "Cc1nc2CCCCn2c(=O)c1CCN1CCC(CC1)c1noc2cc(F)ccc12",
    "olanzapine": "CN1CCN(CC1)C1=Nc2ccccc2Nc2sc(C)cc12",
    "quetiapine": "OCCOCCN1CCN(CC1)C1=Nc2ccccc2Sc2ccccc12",
    "zolpidem": "CN(C)C(=O)Cc1c(nc2ccc(C)cn12)-c1ccc(C)cc1",
    "testosterone": "C[C@]12CC[C@H]3[C@@H](CCC4=CC(=O)CC[C@]34C)[C@@H]1CC[C@@H]2O",
    "estradiol": "C[C@]12CC[C@H]3[C@@H](CCc4cc(O)ccc34)[C@@H]1CC[C@@H]2O",
    "acyclovir": "Nc1nc2n(COCCO)cnc2c(=O)[nH]1",
    "oseltamivir": "CCOC(=O)C1=C[C@@H](OC(CC)CC)[C@H](NC(C)=O)[C@@H](N)C1",
    "methotrexate": "CN(Cc1cnc2nc(N)nc(N)c2n1)c1ccc(cc1)C(=O)N[C@@H](CCC(=O)O)C(=O)O",
    "theophylline": "Cn1c2nc[nH]c2c(=O)n(C)c1=O",
    "dopamine": "NCCc1ccc(O)c(O)c1",
    "serotonin": "NCCc1c[nH]c2ccc(O)cc12",
    "benzocaine": "CCOC(=O)c1ccc(N)cc1",
    "sulfamethoxazole": "Cc1cc(NS(=O)(=O)c2ccc(N)cc2)no1",
    "trimethoprim": "COc1cc(Cc2cnc(N)nc2N)cc(OC)c1OC",
    "metronidazole": "Cc1ncc([N+](=O)[O-])n1CCO",
    "isoniazid": "NNC(=O)c1ccncc1",
    "cetirizine": "OC(=O)COCCN1CCN(CC1)C(c1ccccc1)c1ccc(Cl)cc1",
}

FRAGMENT_SMILES = [
    "c1ccccc1",
    "C(=O)O",
    "C(=O)N",
    "c1ccncc1",
    "N1CCNCC1",
    "C1CCCCC1",
    "S(=O)(=O)N",
    "c1ccc2ccccc2c1",
    "C(F)(F)F",
    "OCCN",
    "Clc1ccccc1",
    "c1ccc2[nH]ccc2c1",
    "CN(C)C",
]
FRAGMENT_SMARTS = [
    "[OX2H][CX3]=O",
    "[#6]~[#7]",
    "[NX3;H2]",
    "c1ccccc1[F,Cl,Br]",
    "[R2]",
    "[$(C=O)]N",
    "[#7;a]",
    "C(=O)[O;H1,-1]",
    "[#6]1~[#6]~[#6]~[#6]~[#6]~[#6]~1",
]


@pytest.fixture(scope="module")
def drugs() -> list[Chem.Mol]:
    return [chem.parse_smiles(smiles) for smiles in DRUGS.values()]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("C1CC", "SMILES Parse Error: unclosed ring for input: 'C1CC'"),
        ("CC(", "SMILES Parse Error: syntax error while parsing: CC(; check for mistakes"),
        ("C[N](C)(C)(C)C", "Explicit valence for atom # 1 N, 5, is greater than permitted"),
        ("c1cccc1", "Can't kekulize mol"),
    ],
)
def test_invalid_smiles_gives_rdkits_reason(text: str, reason: str) -> None:
    with pytest.raises(chem.InvalidMolecule) as raised:
        chem.parse_smiles(text)
    assert str(raised.value).startswith(reason)
    assert "[" not in str(raised.value)[:1] and "\n" not in str(raised.value)


@pytest.mark.parametrize("text", ["", "   ", "\n"])
def test_empty_text_is_refused(text: str) -> None:
    with pytest.raises(chem.InvalidMolecule, match=r"^empty$"):
        chem.parse_smiles(text)
    with pytest.raises(chem.InvalidMolecule, match=r"^empty$"):
        chem.parse_smarts(text)


def test_long_smiles_is_refused_without_rdkit(monkeypatch: pytest.MonkeyPatch) -> None:
    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("RDKit was asked to parse it")

    monkeypatch.setattr(chem.Chem, "MolFromSmiles", never)
    monkeypatch.setattr(chem.Chem, "MolFromSmarts", never)
    started = time.perf_counter()
    for parse in (chem.parse_smiles, chem.parse_smarts):
        with pytest.raises(chem.InvalidMolecule, match="10000 characters long; the limit is 1000"):
            parse("C" * 10_000)
    assert time.perf_counter() - started < 0.05


def test_smiles_with_a_name_and_a_line_break() -> None:
    assert chem.canonical_smiles(chem.parse_smiles("OCC ethanol")) == "CCO"
    with pytest.raises(chem.InvalidMolecule, match="line breaks"):
        chem.parse_smiles("CCO\nCCN")


@pytest.mark.parametrize("text", ["[C", "C)C", "[$(C)", "C1CC["])
def test_smarts_rdkit_rejects(text: str) -> None:
    with pytest.raises(chem.InvalidMolecule, match="SMARTS Parse Error"):
        chem.parse_smarts(text)


def test_smiles_is_accepted_as_smarts() -> None:
    query = chem.parse_smarts("c1ccccc1O")
    assert chem.has_substructure(chem.parse_smiles("Oc1ccc(Cl)cc1"), query)
    assert not chem.has_substructure(chem.parse_smiles("OC1CCCCC1"), query)


def test_canonicalisation_makes_spellings_equal() -> None:
    spellings = ["OC(=O)c1ccccc1OC(C)=O", "CC(=O)Oc1ccccc1C(=O)O", "O=C(O)C1=CC=CC=C1OC(=O)C"]
    assert len({chem.canonical_smiles(chem.parse_smiles(s)) for s in spellings}) == 1
    assert chem.canonical_smiles(chem.parse_smiles("N[C@@H](C)C(=O)O")) != chem.canonical_smiles(
        chem.parse_smiles("N[C@H](C)C(=O)O")
    )


def test_parse_errors_from_many_threads_name_their_own_input() -> None:
    texts = ["C1CC", "CC(", "CCX", "C1CCC", "N(C)(C)(C)(C)C"]
    wrong: list[tuple[str, str]] = []

    def parse_many(text: str) -> None:
        for _ in range(200):
            try:
                chem.parse_smiles(text)
            except chem.InvalidMolecule as error:
                message = str(error)
                others = [t for t in texts if t != text and f"'{t}'" in message]
                if others or ("valence" in message) != text.startswith("N("):
                    wrong.append((text, message))

    threads = [threading.Thread(target=parse_many, args=(text,)) for text in texts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not wrong


@pytest.mark.parametrize("spec", [chem.FingerprintSpec(), chem.FingerprintSpec(3, 1024)])
def test_tanimoto_equals_rdkit_bulk(drugs: list[Chem.Mol], spec: chem.FingerprintSpec) -> None:
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=spec.radius, fpSize=spec.bits)
    reference = [generator.GetFingerprint(mol) for mol in drugs]
    packed = [chem.morgan_bits(mol, spec) for mol in drugs]
    assert all(len(bits) == spec.nbytes for bits in packed)
    for index in range(0, len(drugs), 5):
        expected = DataStructs.BulkTanimotoSimilarity(reference[index], reference)
        np.testing.assert_allclose(chem.tanimoto(packed[index], packed), expected, atol=1e-12)


def test_tanimoto_of_empty_fingerprints_matches_rdkit() -> None:
    empty = DataStructs.ExplicitBitVect(64)
    assert DataStructs.BulkTanimotoSimilarity(empty, [empty]) == [0.0]
    assert chem.tanimoto(bytes(8), [bytes(8), b"\x01" * 8]).tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="8 bytes"):
        chem.tanimoto(bytes(8), [bytes(16)])


@pytest.mark.parametrize(("radius", "bits"), [(0, 2048), (5, 2048), (2, 32), (2, 100), (2, 16384)])
def test_fingerprint_spec_is_validated(radius: int, bits: int) -> None:
    with pytest.raises(ValueError):
        chem.FingerprintSpec(radius, bits)


def test_fingerprint_spec_label() -> None:
    assert chem.FingerprintSpec().label == "ecfp4-2048"


def test_float_vectors_rank_by_cosine(drugs: list[Chem.Mol]) -> None:
    packed = [chem.morgan_bits(mol) for mol in drugs[:10]]
    vectors = np.stack([chem.as_float(bits) for bits in packed])
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-6)
    a, b = (np.unpackbits(np.frombuffer(bits, np.uint8)) for bits in packed[:2])
    cosine = (a & b).sum() / np.sqrt(a.sum() * b.sum())
    assert float(vectors[0] @ vectors[1]) == pytest.approx(cosine, rel=1e-6)
    assert not chem.as_float(bytes(256)).any()


def _queries(drugs: list[Chem.Mol]) -> list[Chem.Mol]:
    scaffolds = [MurckoScaffold.GetScaffoldForMol(mol) for mol in drugs]
    return (
        [chem.parse_smiles(s) for s in FRAGMENT_SMILES]
        + [chem.parse_smarts(s) for s in FRAGMENT_SMARTS]
        + [s for s in scaffolds if s.GetNumAtoms()]
    )


def test_pattern_bits_of_a_substructure_are_a_subset(drugs: list[Chem.Mol]) -> None:
    targets = [chem.pattern_bits(mol) for mol in drugs]
    matches = screened_out = 0
    for query in _queries(drugs):
        passed = chem.screen(chem.pattern_bits(query), targets)
        for mol, passes in zip(drugs, passed, strict=True):
            if chem.has_substructure(mol, query):
                matches += 1
                assert passes, Chem.MolToSmarts(query)
            elif not passes:
                screened_out += 1
    assert matches > 200  # the property was tested on many real pairs
    assert screened_out > 1000  # and the screen does save verifications


def test_screen_then_verify_finds_exactly_the_matches(drugs: list[Chem.Mol]) -> None:
    names = list(DRUGS)
    targets = [chem.pattern_bits(mol) for mol in drugs]
    expected = {
        "OC(=O)c1ccccc1": {"aspirin", "furosemide", "benzocaine"},  # SMILES: esters too
        "c1ccccc1C(=O)[OX2H1]": {"aspirin", "furosemide"},  # SMARTS: acids only
    }
    for text, matching in expected.items():
        query = chem.parse_smarts(text) if "X" in text else chem.parse_smiles(text)
        passed = chem.screen(chem.pattern_bits(query), targets)
        found = {names[i] for i in np.flatnonzero(passed) if chem.has_substructure(drugs[i], query)}
        assert found == matching
        assert found == {
            n for n, mol in zip(names, drugs, strict=True) if chem.has_substructure(mol, query)
        }
        assert passed.sum() < len(drugs)
    # the screen is strongest for queries from SMILES, whose every feature is known
    assert chem.screen(chem.pattern_bits(chem.parse_smiles("OC(=O)c1ccccc1")), targets).sum() <= 6
    aspirin = drugs[names.index("aspirin")]
    query = chem.parse_smarts("c1ccccc1C(=O)[OX2H1]")
    atoms = chem.substructure_atoms(aspirin, query)
    assert len(atoms) == query.GetNumAtoms()
    assert chem.has_substructure(Chem.RWMol(aspirin), query)
    assert chem.substructure_atoms(aspirin, chem.parse_smarts("[Cl]")) == ()


def test_depiction_is_a_clean_svg(drugs: list[Chem.Mol]) -> None:
    mol = drugs[0]
    svg = chem.depict_svg(mol, width=200, height=150, highlight=(0, 1, 2))
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "width='200px'" in svg and "<?xml" not in svg
    assert mol.GetNumConformers() == 0  # coordinates went on a copy
    with pytest.raises(ValueError, match="highlight"):
        chem.depict_svg(mol, highlight=(mol.GetNumAtoms(),))


# Sources


def _sdf(mols: dict[str, str]) -> list[str]:
    blocks = []
    for index, (name, smiles) in enumerate(mols.items()):
        mol = Chem.MolFromSmiles(smiles)
        mol.SetProp("_Name", name)
        blocks.append(Chem.MolToMolBlock(mol) + f">  <ID>\nD{index}\n\n$$$$\n")
    return blocks


def test_sdf_with_a_broken_record_in_the_middle(tmp_path: Path) -> None:
    names = ["aspirin", "caffeine", "ibuprofen", "paracetamol", "nicotine"]
    blocks = _sdf({name: DRUGS[name] for name in names})
    lines = blocks[1].splitlines(keepends=True)
    lines[5] = "garbage instead of an atom\n"
    blocks[1] = "".join(lines)
    # an atom the periodic table does not have
    blocks[3] = blocks[3].replace(" O   0", " Xx  0", 1)
    path = tmp_path / "drugs.sdf"
    path.write_text("".join(blocks) + "\n\n")  # blank lines at the end are no record
    source = MoleculeSource()
    source.check(path)
    assert source.count(path) == 5
    items = list(source.parse(path))
    assert [p.item for p in items] == [f"record {n}" for n in range(1, 6)]
    assert [p.value.name for p in items if p.value] == ["aspirin", "ibuprofen", "nicotine"]
    assert [p.value.source_id for p in items if p.value] == ["D0", "D2", "D4"]
    assert items[0].value and items[0].value.smiles == chem.canonical_smiles(
        chem.parse_smiles(DRUGS["aspirin"])
    )
    assert items[1].error and "Atom line too short: 'garbage instead of an atom'" in items[1].error
    assert items[3].error == "Element 'Xx' not found"


def test_sdf_record_that_fails_sanitization(tmp_path: Path) -> None:
    blocks = _sdf({"ethanol": "CCO", "bad": "CCN", "methane": "C"})
    blocks[1] = (
        blocks[1].replace("  1  2  1  0", "  1  2  3  0").replace("  2  3  1  0", "  2  3  3  0")
    )
    path = tmp_path / "valence.sdf"
    path.write_text("".join(blocks).removesuffix("$$$$\n"))  # the last record lacks its end
    items = list(MoleculeSource().parse(path))
    assert MoleculeSource().count(path) == len(items) == 3
    assert items[1].error and items[1].error.startswith("Explicit valence for atom # 1 C")
    assert items[2].value and items[2].value.name == "methane"


def test_a_file_that_is_not_an_sdf(tmp_path: Path) -> None:
    path = tmp_path / "notes.sdf"
    path.write_text("just some text\n")
    with pytest.raises(InvalidInput, match="not an SD file"):
        MoleculeSource().check(path)


def test_csv_without_a_smiles_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "drugs.csv"
    path.write_text("id,name,structure\n1,aspirin,CC(=O)Oc1ccccc1C(=O)O\n")
    with pytest.raises(InvalidInput, match="no SMILES column"):
        MoleculeSource().check(path)


def test_csv_rows(tmp_path: Path) -> None:
    path = tmp_path / "drugs.csv"
    path.write_text(
        "ID,Name,Canonical_SMILES\n"
        "CHEMBL25,aspirin,CC(=O)Oc1ccccc1C(=O)O\n"
        "X1,broken,C1CC\n"
        "\n"
        ",,Cn1cnc2c1c(=O)n(C)c(=O)n2C\n"
        "X2,nothing,\n"
    )
    source = MoleculeSource()
    source.check(path)
    items = list(source.parse(path))
    assert source.count(path) == len(items) == 4
    assert items[0].value and (items[0].value.name, items[0].value.source_id) == (
        "aspirin",
        "CHEMBL25",
    )
    assert (items[1].item, items[1].error) == (
        "line 3",
        "SMILES Parse Error: unclosed ring for input: 'C1CC'",
    )
    assert items[2].item == "line 5"
    assert items[2].value and (items[2].value.name, items[2].value.source_id) == ("", "")
    assert (items[3].item, items[3].error) == ("line 6", "empty")


def test_smi_with_comments_and_names(tmp_path: Path) -> None:
    path = tmp_path / "drugs.smi"
    path.write_text(
        "# drugs for the test\n"
        "SMILES Name\n"
        "CC(=O)Oc1ccccc1C(=O)O\taspirin\n"
        "\n"
        "CC(=O)Nc1ccc(O)cc1 paracetamol (acetaminophen)\n"
        "# a comment in the middle\n"
        "C1CC broken\n"
        "CN1CCC[C@H]1c1cccnc1\n"
    )
    source = MoleculeSource()
    source.check(path)
    items = list(source.parse(path))
    assert source.count(path) == len(items) == 4
    assert [p.item for p in items] == ["line 3", "line 5", "line 7", "line 8"]
    values = [p.value for p in items if p.value]
    assert [(v.name, v.source_id) for v in values] == [
        ("aspirin", "aspirin"),
        ("paracetamol (acetaminophen)", "paracetamol (acetaminophen)"),
        ("", ""),
    ]
    assert values[2].smiles == "CN1CCC[C@H]1c1cccnc1"
    assert items[2].error == "SMILES Parse Error: unclosed ring for input: 'C1CC'"


def test_a_file_with_an_unknown_suffix(tmp_path: Path) -> None:
    path = tmp_path / "drugs.txt"
    path.write_text("CCO\n")
    with pytest.raises(InvalidInput, match=r"supported: \.smi"):
        MoleculeSource().check(path)
