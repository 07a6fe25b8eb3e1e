"""common.batch_job: a killed and resumed job loses and repeats nothing; every input kind; broken manifest lines."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from common.batch_job import (
    EXIT_FAILED,
    BatchJob,
    Failure,
    Item,
    JsonlOutput,
    NpyOutput,
    collect_items,
    folder_items,
    line_items,
    manifest_items,
)
from common.io import read_jsonl_lenient
from tests.helpers import ROOT

BAD = {"item07", "item13"}
"""Items the job's process() rejects."""

JOB = textwrap.dedent('''
    import json, os, signal, sys
    from pathlib import Path
    from common.batch_job import BatchJob, Failure, Item, JsonlOutput

    out, side, run, kill_after = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    BAD = {"item07", "item13"}
    calls = 0

    def process(batch):
        global calls
        results = []
        for it in batch:
            with open(side, "a") as f:  # the side log: every call, flushed before a kill can strike
                f.write(json.dumps({"run": run, "id": it.id}) + "\\n")
            calls += 1
            if calls == kill_after:
                os.kill(os.getpid(), signal.SIGKILL)  # mid-batch: this batch's finished items are lost
            results.append(Failure("rejected on purpose") if it.id in BAD else {"square": it.payload ** 2})
        return results

    items = [Item(f"item{i:02d}", f"/data/{i}.txt", i) for i in range(20)]
    report = BatchJob(JsonlOutput(out), process, batch_size=3, progress=False).run(items)
    print(json.dumps({"done": report.done, "skipped": report.skipped_existing}))
    sys.exit(report.exit_code)
''')


def _run_job(script: Path, out: Path, side: Path, run: str, kill_after: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(script), str(out), str(side), run, str(kill_after)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_killed_and_resumed_job_loses_and_repeats_nothing(tmp_path: Path) -> None:
    script, out, side = tmp_path / "job.py", tmp_path / "out.jsonl", tmp_path / "side.jsonl"
    partial, failed = tmp_path / "out.jsonl.partial", tmp_path / "out.jsonl.failed.jsonl"
    script.write_text(JOB, encoding="utf-8")

    # Batches of 3: items 0-8 finish (item07 fails), the kill strikes inside the batch of items 9-11.
    first = _run_job(script, out, side, "1", kill_after=11)
    assert first.returncode == -signal.SIGKILL, first.stderr[-2000:]
    assert not out.exists()  # the output appears only at the end, by rename
    finished_1 = [r["id"] for r in read_jsonl_lenient(partial)]
    assert finished_1 == [f"item{i:02d}" for i in range(9) if i != 7]
    assert [f["id"] for f in read_jsonl_lenient(failed)] == ["item07"]
    with open(partial, "a", encoding="utf-8") as f:
        f.write('{"id": "item09", "squ')  # a row torn by the kill

    # Killed again: the first row it appends must not be glued to the torn line (and lost).
    second = _run_job(script, out, side, "2", kill_after=5)
    assert second.returncode == -signal.SIGKILL, second.stderr[-2000:]
    finished_2 = [r["id"] for r in read_jsonl_lenient(partial)]
    assert finished_2 == [*finished_1, "item09", "item10"]

    third = _run_job(script, out, side, "3", kill_after=0)
    assert third.returncode == EXIT_FAILED, third.stderr[-2000:]
    assert json.loads(third.stdout.splitlines()[-1]) == {"done": 20 - len(finished_2) - len(BAD),
                                                         "skipped": len(finished_2)}
    rows = read_jsonl_lenient(out)
    assert [r["id"] for r in rows] == [f"item{i:02d}" for i in range(20) if f"item{i:02d}" not in BAD]
    assert all(r["square"] == int(r["id"][4:]) ** 2 for r in rows)
    assert not partial.exists()
    calls = read_jsonl_lenient(side)
    run_2, run_3 = ([c["id"] for c in calls if c["run"] == run] for run in "23")
    assert not set(run_2) & set(finished_1) and not set(run_3) & set(finished_2)  # nothing finished is redone
    assert sorted(run_3) == sorted({f"item{i:02d}" for i in range(20)} - set(finished_2))  # each once
    assert {f["id"]: (f["path"], f["reason"]) for f in read_jsonl_lenient(failed)} == {
        b: (f"/data/{int(b[4:])}.txt", "rejected on purpose") for b in BAD}

    # A fourth run finds everything finished: only the failed items are tried again.
    fourth = _run_job(script, out, side, "4", kill_after=0)
    assert fourth.returncode == EXIT_FAILED
    assert sorted(c["id"] for c in read_jsonl_lenient(side) if c["run"] == "4") == sorted(BAD)
    assert read_jsonl_lenient(out) == rows


def _squares(batch: list[Item]) -> list[dict[str, int] | Failure]:
    return [{"n": len(str(it.payload))} for it in batch]


def test_folder_input_by_suffix_recursively(tmp_path: Path) -> None:
    for name in ("b.wav", "a.FLAC", "sub/c.wav", "notes.txt", "sub/d.mp3"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    items = folder_items(tmp_path, {".wav", ".flac"})
    assert [Path(it.id).relative_to(tmp_path).as_posix() for it in items] == ["a.FLAC", "b.wav", "sub/c.wav"]
    assert all(it.path == it.id and it.error is None for it in items)
    assert [it.id for it in collect_items(tmp_path, {".mp3"})] == [str(tmp_path / "sub" / "d.mp3")]


def test_single_file_and_list_of_paths(tmp_path: Path) -> None:
    (tmp_path / "one.wav").write_bytes(b"x")
    assert collect_items(tmp_path / "one.wav", {".wav"}) == [Item(str(tmp_path / "one.wav"), str(tmp_path / "one.wav"))]
    (tmp_path / "list.txt").write_text("one.wav\n\n/abs/two.wav\n", encoding="utf-8")
    items = collect_items(tmp_path / "list.txt", {".wav"})
    assert [(it.id, it.path) for it in items if not it.error] == [("one.wav", str(tmp_path / "one.wav")),
                                                                  ("/abs/two.wav", "/abs/two.wav")]
    assert [it.error for it in items if it.error] == [f"{tmp_path / 'list.txt'}:2: empty line"]
    with pytest.raises(FileNotFoundError, match="input not found"):
        collect_items(tmp_path / "nope", {".wav"})


def test_text_lines_ids_are_line_numbers_and_empty_lines_fail(tmp_path: Path) -> None:
    inp = tmp_path / "in.txt"
    inp.write_text("first\r\n  \nthird\n", encoding="utf-8")
    items = line_items(inp)
    assert [(it.id, it.payload, it.error) for it in items] == [
        ("1", "first", None), ("2", None, f"{inp}:2: empty line"), ("3", "third", None)]
    report = BatchJob(JsonlOutput(tmp_path / "out.jsonl"), _squares, batch_size=2, progress=False).run(items)
    assert report.done == 2 and report.exit_code == EXIT_FAILED
    assert read_jsonl_lenient(tmp_path / "out.jsonl") == [{"id": "1", "n": 5}, {"id": "3", "n": 5}]
    assert read_jsonl_lenient(tmp_path / "out.jsonl.failed.jsonl") == [
        {"id": "2", "path": str(inp), "reason": f"{inp}:2: empty line"}]


def test_manifest_broken_lines_are_reported_not_fatal(tmp_path: Path) -> None:
    m = tmp_path / "m.jsonl"
    lines = [
        json.dumps({"id": "a", "path": "audio/a.wav", "lang": "deu_Latn"}),
        "",
        "# a comment",
        '{"id": "b", "path": ',  # torn JSON
        json.dumps(["not", "an", "object"]),
        json.dumps({"path": "c.wav"}),  # no id
        json.dumps({"id": "d"}),  # no path
        json.dumps({"id": 7, "path": "/abs/e.wav"}),  # integer ids are fine
        json.dumps({"id": "a", "path": "again.wav"}),  # duplicate id
        json.dumps({"id": True, "path": "f.wav"}),  # a bool is no id
    ]
    m.write_text("\n".join(lines) + "\n", encoding="utf-8")
    items = manifest_items(m)
    good = [it for it in items if it.error is None]
    assert [(it.id, it.path) for it in good] == [("a", str(tmp_path / "audio" / "a.wav")), ("7", "/abs/e.wav"),
                                                 ("a", str(tmp_path / "again.wav"))]
    assert good[0].payload["lang"] == "deu_Latn"
    errors = {it.id: it.error for it in items if it.error}
    assert set(errors) == {f"{m}:{n}" for n in (4, 5, 6, 7, 10)}
    assert "invalid JSON" in errors[f"{m}:4"] and "JSON object" in errors[f"{m}:5"]
    assert "'id'" in errors[f"{m}:6"] and "'path'" in errors[f"{m}:7"] and "'id'" in errors[f"{m}:10"]

    report = BatchJob(JsonlOutput(tmp_path / "out.jsonl"), _squares, progress=False).run(items)
    assert report.done == 2 and report.exit_code == EXIT_FAILED
    failed = read_jsonl_lenient(tmp_path / "out.jsonl.failed.jsonl")
    assert [f["id"] for f in failed] == [*sorted(errors, key=lambda k: int(k.rsplit(":", 1)[1]))[:4], "a",
                                         f"{m}:10"]
    assert "duplicate id 'a'" in failed[4]["reason"] and failed[4]["path"] == str(tmp_path / "again.wav")
    assert [r["id"] for r in read_jsonl_lenient(tmp_path / "out.jsonl")] == ["a", "7"]
    with pytest.raises(FileNotFoundError, match="manifest not found"):
        manifest_items(tmp_path / "none.jsonl")


def test_text_manifest_requires_its_field(tmp_path: Path) -> None:
    m = tmp_path / "t.jsonl"
    m.write_text(json.dumps({"id": "x", "text": "hello"}) + "\n" + json.dumps({"id": "y", "text": ""}) + "\n",
                 encoding="utf-8")
    items = manifest_items(m, require=("text",))
    assert items[0].payload["text"] == "hello" and items[0].path is None and items[0].error is None
    assert items[1].id == f"{m}:2" and "'text'" in str(items[1].error)


def test_npy_output_resumes_from_a_finished_run_and_redoes_rows_whose_ids_dont_match(tmp_path: Path) -> None:
    calls: list[str] = []

    def vectors(batch: list[Item]) -> list[dict[str, list[float]] | Failure]:
        calls.extend(it.id for it in batch)
        return [{"embedding": [float(it.payload), 0.5]} for it in batch]

    out = tmp_path / "emb.npy"
    job = BatchJob(NpyOutput(out), vectors, batch_size=2, progress=False)
    job.run([Item(str(i), payload=i) for i in range(3)])
    assert calls == ["0", "1", "2"] and (tmp_path / "emb.ids.txt").read_text() == "0\n1\n2\n"
    report = job.run([Item(str(i), payload=i) for i in (2, 0, 3)])
    assert calls[3:] == ["3"] and report.skipped_existing == 2
    arr = np.load(out)
    assert arr.dtype == np.float32 and arr[:, 0].tolist() == [2.0, 0.0, 3.0]
    (tmp_path / "emb.ids.txt").write_text("2\n0\n", encoding="utf-8")  # torn between the two renames
    job.run([Item("2", payload=2)])
    assert calls[4:] == ["2"]


def test_reuse_redoes_rows_and_process_must_answer_every_item(tmp_path: Path) -> None:
    out = tmp_path / "o.jsonl"
    out.write_text(json.dumps({"id": "a", "n": 1}) + "\n" + json.dumps({"id": "b", "n": 1, "words": []}) + "\n")
    seen: list[str] = []

    def process(batch: list[Item]) -> list[dict[str, object] | Failure]:
        seen.extend(it.id for it in batch)
        return [{"n": 2, "words": []} for _ in batch]

    job = BatchJob(JsonlOutput(out), process, progress=False, reuse=lambda r: "words" in r)
    report = job.run([Item("a"), Item("b")])
    assert seen == ["a"] and report.done == 1 and report.skipped_existing == 1 and report.exit_code == 0
    with pytest.raises(RuntimeError, match="0 results for a batch of 1"):
        BatchJob(JsonlOutput(tmp_path / "x.jsonl"), lambda batch: [], progress=False).run([Item("z")])
