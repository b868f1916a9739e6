"""Zip uploads: which members come out, which are refused and why, and what a bomb costs."""

import stat
import time
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from common.archives import check_zip, zip_members
from common.errors import InvalidInput

MB = 1024 * 1024
IMAGES = (".jpg", ".jpeg", ".png")
Outcome = tuple[str, bytes | None, str | None]


def members(path: Path, **limits: int) -> list[Outcome]:
    settings = {"max_total_bytes": 10 * MB, "max_members": 100} | limits
    return [(p.item, p.value, p.error) for p in zip_members(path, suffixes=IMAGES, **settings)]


def make_zip(path: Path, entries: dict[str, bytes], **options: int) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data, **options)
    return path


def central_header(data: bytes, name: str) -> int:
    """Where the central directory entry of ``name`` starts, to forge its fields."""
    at = data.rindex(b"PK\x01\x02", 0, data.rindex(name.encode()))
    assert data[at + 46 : at + 46 + len(name)] == name.encode()
    return at


def test_files_come_out_with_their_names_and_clutter_is_skipped(tmp_path: Path) -> None:
    path = make_zip(
        tmp_path / "photos.zip",
        {
            "a.jpg": b"A",
            "nested/": b"",
            "nested/deeper/b.PNG": b"B",
            "./c.jpeg": b"C",
            "__MACOSX/._a.jpg": b"resource fork",
            "__MACOSX/nested/._b.PNG": b"resource fork",
            ".DS_Store": b"finder",
            "nested/.hidden.jpg": b"hidden",
            ".thumbnails/t.jpg": b"dot folder",
            "notes.txt": b"text",
            "README": b"no suffix",
            "empty.jpg": b"",
        },
    )
    assert members(path) == [
        ("a.jpg", b"A", None),
        ("nested/deeper/b.PNG", b"B", None),
        ("./c.jpeg", b"C", None),
        ("notes.txt", None, "cannot load .txt; supported: .jpg, .jpeg, .png"),
        ("README", None, "cannot load a file without a suffix; supported: .jpg, .jpeg, .png"),
        ("empty.jpg", b"", None),
    ]
    check_zip(path)


def test_hostile_members_are_refused_and_the_rest_still_read(tmp_path: Path) -> None:
    path = tmp_path / "hostile.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("../evil.jpg", b"slip")
        archive.writestr("/abs.jpg", b"absolute")
        archive.writestr("ok/../../up.jpg", b"slip")
        archive.writestr("..\\windows.jpg", b"slip")
        archive.writestr("C:/drive.jpg", b"absolute")
        archive.writestr("__MACOSX/../sneaky.jpg", b"slip behind clutter")
        link = zipfile.ZipInfo("link.jpg")
        link.external_attr = 0o120777 << 16
        archive.writestr(link, "/etc/passwd")
        fifo = zipfile.ZipInfo("fifo.jpg")
        fifo.external_attr = (stat.S_IFIFO | 0o644) << 16
        archive.writestr(fifo, b"")
        archive.writestr("secret.jpg", b"pretend ciphertext")
        archive.writestr("packed.jpg", b"B" * 1000, compress_type=zipfile.ZIP_BZIP2)
        archive.writestr("fine.jpg", b"fine")
    data = bytearray(path.read_bytes())
    data[central_header(data, "secret.jpg") + 8] |= 0x1  # the "encrypted" flag bit
    path.write_bytes(data)

    slip = "refused: the name contains '..' (zip slip)"
    absolute = "refused: an absolute path (zip slip)"
    assert members(path) == [
        ("../evil.jpg", None, slip),
        ("/abs.jpg", None, absolute),
        ("ok/../../up.jpg", None, slip),
        ("..\\windows.jpg", None, slip),
        ("C:/drive.jpg", None, absolute),
        ("__MACOSX/../sneaky.jpg", None, slip),
        ("link.jpg", None, "refused: a symbolic link, not a file"),
        ("fifo.jpg", None, "refused: not a regular file"),
        ("secret.jpg", None, "refused: the file is encrypted"),
        (
            "packed.jpg",
            None,
            "refused: compressed with bzip2; only stored or deflated files are read",
        ),
        ("fine.jpg", b"fine", None),
    ]


def test_corrupt_members_are_item_errors(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.zip"
    payload = bytes(range(256)) * 64
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("stored.jpg", b"S" * 100 + b"MARK" + b"S" * 100)
        archive.writestr("deflated.jpg", payload, compress_type=zipfile.ZIP_DEFLATED)
        archive.writestr("header.jpg", b"H")
        archive.writestr("after.jpg", b"after")
    infos = {i.filename: i for i in zipfile.ZipFile(path).infolist()}
    data = bytearray(path.read_bytes())
    data[data.index(b"MARK")] ^= 0xFF  # CRC mismatch
    start = infos["deflated.jpg"].header_offset + 30 + len("deflated.jpg")
    data[start + 10 : start + 40] = b"\xff" * 30  # a broken deflate stream
    data[infos["header.jpg"].header_offset] = ord("X")  # not a local file header
    path.write_bytes(data)

    outcomes = members(path)
    assert [(item, value) for item, value, _ in outcomes] == [
        ("stored.jpg", None),
        ("deflated.jpg", None),
        ("header.jpg", None),
        ("after.jpg", b"after"),
    ]
    errors = [error or "" for _, _, error in outcomes[:3]]
    assert all(e.startswith("the file is corrupt in the archive: ") for e in errors)
    assert "Bad CRC-32" in errors[0]
    assert "Bad magic number" in errors[2]


@pytest.fixture(scope="module")
def bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """50 MB of zeros that deflate to about 50 KB, between two small files."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("first.jpg", b"first")
        with archive.open("bomb.jpg", "w") as member:
            for _ in range(50):
                member.write(bytes(MB))
        archive.writestr("after.jpg", b"after")
    assert path.stat().st_size < 100_000
    return path


def test_a_zip_bomb_costs_at_most_the_budget(bomb: Path) -> None:
    tracemalloc.start()
    started = time.perf_counter()
    try:
        outcomes = members(bomb, max_total_bytes=MB)
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert outcomes == [
        ("first.jpg", b"first", None),
        (
            "bomb.jpg",
            None,
            f"the archive unpacks to more than {MB} bytes; this file and the rest were not read",
        ),
    ]
    assert elapsed < 1.0
    assert peak < 4 * MB


def test_a_header_that_understates_the_size_does_not_help_a_bomb(bomb: Path) -> None:
    data = bytearray(bomb.read_bytes())
    at = central_header(data, "bomb.jpg")
    data[at + 24 : at + 28] = (1000).to_bytes(4, "little")  # "uncompressed size: 1000"
    forged = bomb.with_name("forged.zip")
    forged.write_bytes(data)
    started = time.perf_counter()
    outcomes = members(forged, max_total_bytes=MB)
    assert time.perf_counter() - started < 1.0
    assert [(item, value) for item, value, _ in outcomes] == [
        ("first.jpg", b"first"),
        ("bomb.jpg", None),  # zipfile stops at the declared size, then the CRC fails
        ("after.jpg", b"after"),
    ]
    assert "Bad CRC-32" in (outcomes[1][2] or "")


def test_the_budget_is_for_the_whole_archive(tmp_path: Path) -> None:
    part = b"x" * (400 * 1024)
    path = make_zip(tmp_path / "big.zip", {f"{n}.jpg": part for n in range(4)})
    assert members(path, max_total_bytes=MB) == [
        ("0.jpg", part, None),
        ("1.jpg", part, None),
        (
            "2.jpg",
            None,
            f"the archive unpacks to more than {MB} bytes; this file and the rest were not read",
        ),
    ]
    assert [value for _, value, _ in members(path, max_total_bytes=len(part) * 4)] == [part] * 4


def test_the_member_count_is_capped(tmp_path: Path) -> None:
    entries = {"__MACOSX/._0.jpg": b"", "dir/": b""} | {f"{n}.jpg": b"%d" % n for n in range(5)}
    path = make_zip(tmp_path / "many.zip", entries)
    assert members(path, max_members=3) == [
        ("0.jpg", b"0", None),
        ("1.jpg", b"1", None),
        ("2.jpg", b"2", None),
        ("3.jpg", None, "the archive holds more than 3 files; this one and the rest were not read"),
    ]
    assert len(members(path, max_members=5)) == 5


def test_check_accepts_a_zip_with_files(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "ok.zip", {"a.jpg": b"A"})
    check_zip(path)
    with zipfile.ZipFile(path, "a") as archive:
        archive.comment = b"an archive comment moves the end record"
    check_zip(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"\xff\xd8\xff\xe0 a jpeg, not a zip" * 10, "the file is not a zip archive"),
        (b"PK\x05\x06", "the file is not a zip archive"),
    ],
)
def test_check_refuses_what_is_not_a_zip(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "upload.zip"
    path.write_bytes(content)
    with pytest.raises(InvalidInput, match=message):
        check_zip(path)
    with pytest.raises(InvalidInput, match=message):
        list(zip_members(path, max_total_bytes=MB, max_members=10, suffixes=IMAGES))


def test_check_refuses_a_truncated_zip(tmp_path: Path) -> None:
    whole = make_zip(tmp_path / "whole.zip", {f"{n}.jpg": bytes(range(256)) * n for n in range(20)})
    data = whole.read_bytes()
    for cut in (len(data) // 2, len(data) - 10):
        path = tmp_path / f"cut{cut}.zip"
        path.write_bytes(data[:cut])
        with pytest.raises(InvalidInput, match=r"not a (readable )?zip archive"):
            check_zip(path)


def test_check_refuses_a_corrupt_directory(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "bad.zip", {"a.jpg": b"A", "b.jpg": b"B"})
    data = bytearray(path.read_bytes())
    data[central_header(data, "b.jpg")] = ord("X")
    path.write_bytes(data)
    with pytest.raises(InvalidInput, match="not a readable zip archive"):
        check_zip(path)


def test_check_refuses_an_archive_without_files(tmp_path: Path) -> None:
    empty = make_zip(tmp_path / "empty.zip", {})
    clutter = make_zip(tmp_path / "clutter.zip", {"dir/": b"", "__MACOSX/._a.jpg": b"x"})
    for path in (empty, clutter):
        with pytest.raises(InvalidInput, match="holds no files"):
            check_zip(path)
        assert members(path) == []


def test_a_huge_directory_is_refused_before_zipfile_parses_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entries = {f"{n:04}.jpg": b"" for n in range(100)}
    plain = make_zip(tmp_path / "plain.zip", entries)
    monkeypatch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 10)  # write zip64 end records
    zip64 = make_zip(tmp_path / "zip64.zip", entries)
    monkeypatch.undo()
    assert b"PK\x06\x06" in zip64.read_bytes()
    for path in (plain, zip64):
        directory = zipfile.ZipFile(path).start_dir
        size = path.stat().st_size - directory - 22 - (76 if path is zip64 else 0)
        check_zip(path, max_directory_bytes=size)
        with pytest.raises(InvalidInput, match="lists too many files"):
            check_zip(path, max_directory_bytes=size - 1)
        with pytest.raises(InvalidInput, match="lists too many files"):
            list(
                zip_members(
                    path,
                    max_total_bytes=MB,
                    max_members=10,
                    suffixes=IMAGES,
                    max_directory_bytes=size - 1,
                )
            )
