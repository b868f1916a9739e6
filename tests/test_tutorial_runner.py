"""The tutorial runner's comparison of shown and real outputs: what it lets pass, and what not.

If these rules were loose, ``tests/test_tutorials.py`` would pass on tutorials that drifted.
"""

from pathlib import Path

import pytest

from tests.tutorial import FileBlock, Ids, _only_gets, compare_output, steps, write_file

JOB = "f45e2a2005054d478a134714dbcb461b"
OTHER_JOB = "9a434de4a9984a79a98f9434eca127b0"


def same(shown: str, actual: str, ids: Ids | None = None) -> bool:
    return not compare_output(shown, actual, ids or Ids())


def test_json_fields_and_values_must_match() -> None:
    assert same('{"a": 1, "b": "x"}', '{"b":"x","a":1}')
    assert not same('{"a": 1}', '{"a":1,"b":2}')  # a field the text does not show
    assert not same('{"a": 1, "b": 2}', '{"a":1}')  # a field that is gone
    assert not same('{"a": "x"}', '{"a":"y"}')
    assert not same('{"a": null}', '{"a":false}')
    assert same('{"a": 1, "…": "…"}', '{"a":1,"b":2}')  # more fields, left out on purpose
    assert same('{"a":1,…}', '{"a":1,"b":2}')


def test_numbers_are_equal_to_the_precision_shown() -> None:
    assert same('{"score": 0.7369}', '{"score":0.73694}')
    assert not same('{"score": 0.7369}', '{"score":0.7371}')
    assert not same('{"count": 5}', '{"count":6}')
    assert not same('{"count": 5}', '{"count":"5"}')
    assert same('{"similarity": 1.0}', '{"similarity":1.0}')
    assert not same('{"similarity": 1.0}', '{"similarity":0.96}')  # 1.0 is not 1
    assert not same('{"score": 0.50}', '{"score":0.54}')


def test_lists_and_strings_can_be_shortened_only_where_marked() -> None:
    assert same('[1, 2, "…"]', "[1,2,3,4]")
    assert not same("[1, 2]", "[1,2,3]")
    assert not same('[1, 3, "…"]', "[1,2,3]")
    assert same('{"answer": "In the court…"}', '{"answer":"In the courtyard."}')
    assert not same('{"answer": "In the garden…"}', '{"answer":"In the courtyard."}')


def test_job_ids_match_by_shape_and_stay_the_same_job() -> None:
    ids = Ids()
    assert same(f'{{"id": "{JOB}"}}', f'{{"id":"{OTHER_JOB}"}}', ids)
    assert ids.substitute(f"curl localhost/jobs/{JOB}") == f"curl localhost/jobs/{OTHER_JOB}"
    # The same shown id cannot stand for two real jobs.
    assert not same(f'{{"id": "{JOB}"}}', '{"id":"' + "0" * 31 + '1"}', ids)
    assert not same(f'{{"id": "{JOB}"}}', '{"id":"not-a-job-id"}', Ids())
    assert same('{"t": "2026-11-23T15:45:56.668529Z"}', '{"t":"2026-12-02T10:00:00.1Z"}')
    assert not same('{"t": "2026-11-23T15:45:56.668529Z"}', '{"t":"yesterday"}')


def test_http_status_headers_and_body() -> None:
    shown = f'HTTP/1.1 202 Accepted\nlocation: http://h/jobs/{JOB}\n\n{{"status": "queued"}}'
    real = f"HTTP/1.1 202 Accepted\r\ndate: x\r\nlocation: http://h/jobs/{OTHER_JOB}\r\n\r\n"
    assert same(shown, real + '{"status":"queued"}')
    assert not same(shown, real + '{"status":"running"}')
    assert not same(shown, real.replace("202 Accepted", "200 OK") + '{"status":"queued"}')
    assert not same(shown, "HTTP/1.1 202 Accepted\r\n\r\n" + '{"status":"queued"}')


def test_text_lines_and_events() -> None:
    assert same("204\n204", "204\n204\n")
    assert not same("204\n204", "204\n404")
    assert same("port … is taken", "port 8123 is taken")
    assert same(
        'event: end\ndata: {"status": "succeeded", …}',
        'event: end\ndata: {"status":"succeeded","n":1}',
    )
    assert not same('event: end\ndata: {"status": "succeeded"}', "event: progress\ndata: {}\n")


@pytest.mark.parametrize(
    ("markdown", "found"),
    [
        ("```bash\nls\n```\n\n```\nx\n```\n", [("ls\n", "x\n", None)]),
        ("```bash\nls\n```\n\n## Next\n\n```\nx\n```\n", [("ls\n", None, None)]),
        (
            "<!-- not run: no engine -->\n```bash\ndocker compose up\n```\n",
            [("docker compose up\n", None, "no engine")],
        ),
        ("```python\nprint(1)\n```\n", []),
    ],
)
def test_blocks_and_their_outputs(
    markdown: str, found: list[tuple[str, str | None, str | None]]
) -> None:
    assert [(s.command, s.shown, s.skip) for s in steps(markdown)] == found


def test_only_plain_reads_are_sent_again() -> None:
    assert _only_gets(
        "curl -s localhost:8000/qa/jobs/x\ncurl -s -N localhost:8000/qa/jobs/x/events"
    )
    assert _only_gets('curl -s -o /dev/null -w "%{http_code}" localhost:8000/qa/health/live')
    assert not _only_gets("curl -s -XPOST localhost:8000/qa/collections/faq/loads/sample")
    assert not _only_gets("curl -s --request DELETE localhost:8000/qa/collections/faq")
    assert not _only_gets("curl -s localhost:8000/x -F file=@a.csv")
    assert not _only_gets("curl -s localhost:8000/x \\\n     -d '{}'")
    assert not _only_gets("cat > office.csv <<'EOF'\nquestion,answer\nEOF")


GUIDE = """Write it:

```python title="pkg/app.py"
print("hi")
```

```bash
python pkg/app.py
```

```text title="pkg/list.py" after='    "a",'
    "b",
```

```
hi
```
"""


def test_file_blocks_are_written_in_order_and_are_never_an_output(tmp_path: Path) -> None:
    found = steps(GUIDE)
    assert [s.file.path if s.file else s.command.strip() for s in found] == [
        "pkg/app.py",
        "python pkg/app.py",
        "pkg/list.py",
    ]
    assert found[0].file and found[2].file
    assert found[1].shown is None  # the next block is a file to write, not what it prints
    assert found[2].file == FileBlock("pkg/list.py", '    "b",\n', '    "a",')
    assert write_file(tmp_path, found[0].file) == []
    assert (tmp_path / "pkg" / "app.py").read_text() == 'print("hi")\n'
    (tmp_path / "pkg" / "list.py").write_text('X = (\n    "a",\n)\n')
    assert write_file(tmp_path, found[2].file) == []
    assert (tmp_path / "pkg" / "list.py").read_text() == 'X = (\n    "a",\n    "b",\n)\n'
    missing = FileBlock("pkg/list.py", "z\n", after="no such line")
    assert write_file(tmp_path, missing) == ["pkg/list.py: no line 'no such line' to add after"]
    assert write_file(tmp_path, FileBlock("../out.py", "")) != []
    assert not (tmp_path.parent / "out.py").exists()
