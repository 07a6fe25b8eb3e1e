"""The retrieval engine (common/retrieval/, scripts/retrieve.py): exact and approximate search, save/load, the
folder indexer's cache and bad files, the command line end to end, and the text-tower embedder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

faiss = pytest.importorskip("faiss")

from benchmarks.retrieval_speed import clustered, recall_at  # noqa: E402
from common.io import read_jsonl_lenient  # noqa: E402
from common.retrieval.embedders import EMBEDDERS, EmbedderKind, read_text_lines  # noqa: E402
from common.retrieval.engine import Retriever  # noqa: E402
from common.retrieval.folder import index_folder  # noqa: E402
from common.retrieval.index import IndexConfig  # noqa: E402
from tests.helpers import ROOT, load_script  # noqa: E402

DIM = 64


class BagOfWords:
    """A toy text embedder: hashed words; counts what it embeds; a line saying BOOM makes it raise."""

    calls: ClassVar[list[int]] = []

    @property
    def dim(self) -> int:
        return DIM

    def embed(self, inputs: list[Any]) -> np.ndarray:
        if any("BOOM" in str(t) for t in inputs):
            raise RuntimeError("the toy embedder cannot take BOOM")
        BagOfWords.calls.append(len(inputs))
        out = np.zeros((len(inputs), DIM), np.float32)
        for row, text in zip(out, inputs):
            row[0] = 0.1  # no text is all zeros
            for word in str(text).lower().split():
                row[1 + zlib.crc32(word.encode()) % (DIM - 1)] += 1.0
        return out


class VectorFile:
    """A toy second modality: a .vec file holds DIM numbers."""

    @property
    def dim(self) -> int:
        return DIM

    def embed(self, inputs: list[Any]) -> np.ndarray:
        return np.stack([np.loadtxt(p, dtype=np.float32).reshape(DIM) for p in inputs])


@pytest.fixture
def toy_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A model directory that the toy embedders (registered for this test only) recognise."""
    model = tmp_path / "toy_model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "toy_bow"}))
    EMBEDDERS.names()  # load the plugins first, so the patch below is not undone by a later load

    def mine(config: Any) -> bool:
        return config.get("model_type") == "toy_bow"

    monkeypatch.setitem(EMBEDDERS.entries, "toy_text", EmbedderKind("toy_text", "text", (".txt",),
                                                                    lambda d: BagOfWords(), mine, read_text_lines))
    monkeypatch.setitem(EMBEDDERS.entries, "toy_vec", EmbedderKind("toy_vec", "vector", (".vec",),
                                                                   lambda d: VectorFile(), mine))
    BagOfWords.calls = []
    return model


def write_docs(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "animals.txt").write_text("the red cat sleeps\nthe dog runs fast\n\na bird sings\n", encoding="utf-8")
    (folder / "sub").mkdir(exist_ok=True)
    (folder / "sub" / "things.txt").write_text("a blue cube on a table\na green ball\n", encoding="utf-8")


def test_flat_search_returns_the_exact_neighbours() -> None:
    rng = np.random.default_rng(0)
    base, queries = rng.standard_normal((400, 16)), rng.standard_normal((5, 16))
    r = Retriever.build([f"v{i}" for i in range(400)], base)
    hits = r.search(queries, top_k=10)
    b = base / np.linalg.norm(base, axis=1, keepdims=True)
    cos = (queries / np.linalg.norm(queries, axis=1, keepdims=True)) @ b.T  # [Q, N]
    for q, row in enumerate(hits):
        want = np.argsort(-cos[q])[:10]
        assert [i for i, _ in row] == [f"v{j}" for j in want]
        np.testing.assert_allclose([s for _, s in row], cos[q, want], atol=1e-5)
    with pytest.raises(ValueError, match="width 16"):
        r.search(np.ones((1, 8)), 3)
    with pytest.raises(ValueError, match="already in the index"):
        r.add(["v3"], np.ones((1, 16)))


@pytest.mark.parametrize("cfg", [IndexConfig(type="ivf", nlist=32, nprobe=8),
                                 IndexConfig(type="hnsw", m=16, ef_construction=64, ef_search=64)])
def test_approximate_indexes_find_what_exact_search_finds(cfg: IndexConfig) -> None:
    base = clustered(3000, 32, clusters=30, intrinsic=16, noise=0.05, seed=0)
    queries = clustered(200, 32, clusters=30, intrinsic=16, noise=0.05, seed=1)
    ids = [str(i) for i in range(len(base))]
    exact = Retriever.build(ids, base).search(queries, 10)
    approx = Retriever.build(ids, base, cfg).search(queries, 10)
    recall = recall_at(np.array([[int(i) for i, _ in h] for h in approx]), np.array([[int(i) for i, _ in h]
                                                                                    for h in exact]))
    assert recall >= 0.9, f"{cfg.type} recall@10 {recall:.3f}"


@pytest.mark.parametrize("kind", ["flat", "ivf", "hnsw"])
def test_save_load_round_trip_gives_the_same_results(kind: str, tmp_path: Path) -> None:
    base = clustered(500, 24, clusters=10, intrinsic=8, noise=0.05, seed=0)
    queries = clustered(20, 24, clusters=10, intrinsic=8, noise=0.05, seed=1)
    r = Retriever.build([f"x{i}" for i in range(500)], base, IndexConfig(type=kind, nlist=8, nprobe=4, m=8))
    r.save(tmp_path / "idx")
    back = Retriever.from_pretrained(tmp_path / "idx")
    assert back.search(queries, 7) == r.search(queries, 7) and back.cfg.params() == r.cfg.params()
    manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    assert manifest["type"] == kind and manifest["count"] == 500 and manifest["dim"] == 24
    assert manifest["metric"] == "inner_product" and manifest["ids_file"] == "ids.txt"
    assert not list((tmp_path / "idx").glob(".*.tmp"))  # no temporary files left by the atomic writes
    back.add(["new"], queries[:1])  # updates: the added vector is found, and survives another round trip
    back.save(tmp_path / "idx")
    again = Retriever.from_pretrained(tmp_path / "idx")
    assert again.search(queries[:1], 1)[0][0][0] == "new" and len(again) == 501
    (tmp_path / "idx" / "ids.txt").write_text("x0\n")
    with pytest.raises(ValueError, match="index files disagree"):
        Retriever.from_pretrained(tmp_path / "idx")
    with pytest.raises(FileNotFoundError, match=r"no manifest\.json"):
        Retriever.from_pretrained(tmp_path)


def test_reindex_embeds_only_new_and_changed_files(toy_model: Path, tmp_path: Path) -> None:
    docs, idx = tmp_path / "docs", tmp_path / "idx"
    write_docs(docs)
    first = index_folder(docs, idx, toy_model, progress=False)
    assert (first.action, first.count, first.embedded) == ("created", 5, 5)
    hit = Retriever.from_pretrained(idx).search(["red cat"], 1)[0][0]
    assert hit[0] == "animals.txt:1" and hit[1] > 0.5
    BagOfWords.calls = []
    (docs / "more.txt").write_text("a yellow submarine\n", encoding="utf-8")
    second = index_folder(docs, idx, toy_model, progress=False)
    assert (second.action, second.count, second.embedded, BagOfWords.calls) == ("appended", 6, 1, [1])
    assert second.job.skipped_existing == 2
    assert index_folder(docs, idx, toy_model, progress=False).action == "unchanged"
    (docs / "sub" / "things.txt").write_text("a blue cube on a table\n", encoding="utf-8")  # changed
    (docs / "more.txt").unlink()  # removed
    third = index_folder(docs, idx, toy_model, progress=False)
    assert (third.action, third.count, third.embedded) == ("rebuilt", 4, 1)
    r = Retriever.from_pretrained(idx)
    assert "more.txt:1" not in r.ids and "sub/things.txt:2" not in r.ids
    # Another index type: rebuilt from the cache, nothing embedded again.
    fourth = index_folder(docs, idx, toy_model, {"type": "hnsw", "m": 8}, progress=False)
    assert (fourth.action, fourth.embedded) == ("rebuilt", 0)
    assert Retriever.from_pretrained(idx).search(["a bird sings"], 1)[0][0][0] == "animals.txt:4"


def test_an_index_records_the_folder_it_was_built_from(toy_model: Path, tmp_path: Path) -> None:
    from common.retrieval.engine import source_root

    docs, idx = tmp_path / "docs", tmp_path / "elsewhere" / "idx"
    write_docs(docs)
    index_folder(docs, idx, toy_model, progress=False)
    r = Retriever.from_pretrained(idx)
    hit = r.search(["red cat"], 1)[0][0][0]
    assert r.source_root == source_root(idx) == docs.resolve()
    assert (r.source_root / hit.split(":")[0]).is_file()  # a result's file opens from there, wherever the index is
    assert source_root(tmp_path / "nothing") is None


def test_a_killed_index_run_resumes(toy_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    docs, idx = tmp_path / "docs", tmp_path / "idx"
    write_docs(docs)
    (docs / "zz.txt").write_text("the last file\n", encoding="utf-8")
    real = BagOfWords.embed

    def dies_on_the_last_file(self: BagOfWords, inputs: list[Any]) -> np.ndarray:
        if inputs == ["the last file"]:
            raise KeyboardInterrupt  # the run is killed, not a bad file
        return real(self, inputs)

    monkeypatch.setattr(BagOfWords, "embed", dies_on_the_last_file)
    with pytest.raises(KeyboardInterrupt):
        index_folder(docs, idx, toy_model, batch_size=1, progress=False)
    assert not (idx / "manifest.json").exists() and (idx / "files.jsonl.partial").is_file()
    monkeypatch.setattr(BagOfWords, "embed", real)
    BagOfWords.calls = []
    report = index_folder(docs, idx, toy_model, batch_size=1, progress=False)
    assert (report.job.skipped_existing, report.embedded, BagOfWords.calls, report.count) == (2, 1, [1], 6)
    assert not (idx / "files.jsonl.partial").exists()


def test_bad_files_are_reported_and_skipped(toy_model: Path, tmp_path: Path) -> None:
    docs, idx = tmp_path / "docs", tmp_path / "idx"
    write_docs(docs)
    (docs / "latin1.txt").write_bytes("caf\xe9 au lait\n".encode("latin-1"))
    (docs / "blank.txt").write_text("\n  \n", encoding="utf-8")
    (docs / "boom.txt").write_text("this line says BOOM\n", encoding="utf-8")
    (docs / "good.vec").write_text(" ".join(["1"] * DIM))
    (docs / "bad.vec").write_text("not numbers at all")
    (docs / "notes.xyz").write_text("a format nobody reads")
    report = index_folder(docs, idx, toy_model, batch_size=8, progress=False)
    assert report.job.exit_code == 3 and report.count == 6 and report.unknown == {".xyz": 1}
    failed = {row["id"]: row["reason"] for row in read_jsonl_lenient(idx / "failed.jsonl")}
    assert set(failed) == {"latin1.txt", "blank.txt", "boom.txt", "bad.vec"}
    assert "not UTF-8" in failed["latin1.txt"] and "no text" in failed["blank.txt"]
    assert "cannot take BOOM" in failed["boom.txt"] and "could not embed" in failed["bad.vec"]
    assert "good.vec" in Retriever.from_pretrained(idx).ids
    BagOfWords.calls = []
    (docs / "boom.txt").write_text("fixed now\n", encoding="utf-8")  # failed files are retried
    again = index_folder(docs, idx, toy_model, batch_size=8, progress=False)
    assert again.count == 7 and BagOfWords.calls == [1]


def test_cli_index_search_eval_end_to_end(toy_model: Path, tmp_path: Path) -> None:
    script = load_script("retrieve")
    docs, idx = tmp_path / "docs", tmp_path / "idx"
    write_docs(docs)
    assert script.main(["index", f"model={toy_model}", f"input={docs}", f"index={idx}", "progress=false"]) == 0
    out = tmp_path / "results.jsonl"
    rows = script.main(["search", f"index={idx}", "query=a blue cube", "top_k=3", f"output={out}"])
    assert read_jsonl_lenient(out) == rows and len(rows) == 3
    assert rows[0]["id"] == "sub/things.txt:1" and rows[0]["rank"] == 1 and rows[0]["query"] == "a blue cube"
    query = tmp_path / "q.txt"
    query.write_text("dog runs\n")
    assert script.main(["search", f"index={idx}", f"query_file={query}", "top_k=1"])[0]["id"] == "animals.txt:2"
    queries = tmp_path / "queries.jsonl"
    queries.write_text("\n".join(json.dumps(q) for q in [
        {"query": "the red cat sleeps", "relevant": "animals.txt:1"},
        {"query": "a green ball", "relevant": ["sub/things.txt:2", "sub/things.txt:1"]},
        {"query_file": "q.txt", "relevant": "animals.txt:2"},
        {"query": "x", "relevant": "nope.txt"},
    ]) + "\n{torn\n")
    metrics = script.main(["eval", f"index={idx}", f"queries={queries}", f"output={tmp_path / 'm.json'}"])
    assert metrics["queries"] == 3 and metrics["skipped"] == 2
    assert metrics["hit@1"] == 1.0 and metrics["mrr"] == 1.0 and metrics["recall@1"] == pytest.approx(5 / 6)
    assert metrics["recall@5"] == 1.0 and json.loads((tmp_path / "m.json").read_text()) == metrics
    with pytest.raises(SystemExit, match="exactly one of query"):
        script.main(["search", f"index={idx}"])
    with pytest.raises(SystemExit, match="unknown mode 'serch'"):
        script.main(["serch", f"index={idx}"])
    with pytest.raises(SystemExit, match="mode=, index= required"):
        script.main([])


def test_unknown_extensions_get_a_clear_message(toy_model: Path, tmp_path: Path) -> None:
    script = load_script("retrieve")
    odd = tmp_path / "scan.xyz"
    odd.write_text("?")
    msg = rf"{odd}: no embedder of model={toy_model} reads .xyz files; it reads .txt \(text\), .vec \(vector\)"
    with pytest.raises(SystemExit, match=msg):
        script.main(["index", f"model={toy_model}", f"input={odd}", f"index={tmp_path / 'idx'}"])
    write_docs(tmp_path / "docs")
    script.main(["index", f"model={toy_model}", f"input={tmp_path / 'docs'}", f"index={tmp_path / 'idx'}",
                 "progress=false"])
    with pytest.raises(SystemExit, match=msg):
        script.main(["search", f"index={tmp_path / 'idx'}", f"query_file={odd}"])
    other = tmp_path / "other_model"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "nobody_knows"}))
    with pytest.raises(SystemExit, match="no registered retrieval embedder recognises it"):
        script.main(["index", f"model={other}", f"input={tmp_path / 'docs'}", f"index={tmp_path / 'i2'}"])
    (toy_model / "config.json").write_text(json.dumps({"model_type": "toy_bow", "retrained": True}))
    with pytest.raises(SystemExit, match="has changed since the index was built"):
        script.main(["search", f"index={tmp_path / 'idx'}", "query=cat"])
    with pytest.raises(SystemExit, match="holds vectors of another model"):
        script.main(["index", f"model={toy_model}", f"input={tmp_path / 'docs'}", f"index={tmp_path / 'idx'}"])


@pytest.fixture
def xlmr_docs(tmp_path: Path) -> tuple[Path, Path]:
    """A tiny random XLM-R text tower and a folder of lines in the words its tokenizer knows."""
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaModel

    from tests.test_text_towers import _tokenizer

    tok = _tokenizer("<s> $A </s>", with_pad=True)
    torch.manual_seed(0)
    XLMRobertaModel(XLMRobertaConfig(
        vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=64, pad_token_id=0, bos_token_id=2, eos_token_id=3, type_vocab_size=1,
    )).save_pretrained(tmp_path / "xlmr")
    tok.save_pretrained(tmp_path / "xlmr")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("the cat sat on the mat\nmusic plays loud tonight\n", encoding="utf-8")
    (docs / "b.txt").write_text("a dog runs in the park\nHallo Welt wie geht es\nпривіт світ\n", encoding="utf-8")
    return tmp_path / "xlmr", docs


def test_text_tower_embedder(xlmr_docs: tuple[Path, Path], tmp_path: Path) -> None:
    """The suite's text towers embed .txt files (text/retrieval_embedder.py, found through the plugins)."""
    model, docs = xlmr_docs
    script = load_script("retrieve")
    assert script.main(["index", f"model={model}", f"input={docs}", f"index={tmp_path / 'idx'}",
                        "progress=false", "faiss.type=hnsw"]) == 0
    r = Retriever.from_pretrained(tmp_path / "idx")
    assert r.model is not None and r.model.embedders == {"text": "text_tower"} and r.dim == 32 and len(r) == 5
    assert r.cfg.type == "hnsw"
    assert r.search(["music plays loud tonight"], 1)[0][0] == ("a.txt:2", pytest.approx(1.0, abs=1e-4))
    assert r.search(["a dog runs in the park"], 1)[0][0][0] == "b.txt:1"


def test_with_mode_maps_the_first_word() -> None:
    script = load_script("retrieve")
    assert script.with_mode(["index", "index=x"]) == ["mode=index", "index=x"]
    assert script.with_mode(["mode=eval", "index=x"]) == ["mode=eval", "index=x"]
    assert script.with_mode(["--help"]) == ["--help"]


@pytest.mark.slow
def test_the_command_line_as_the_issue_writes_it(xlmr_docs: tuple[Path, Path], tmp_path: Path) -> None:
    """``python scripts/retrieve.py index model=... input=... index=...`` in a fresh process, then search."""
    model, docs = xlmr_docs
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    base = [sys.executable, str(ROOT / "scripts" / "retrieve.py")]
    proc = subprocess.run([*base, "index", f"model={model}", f"input={docs}", f"index={tmp_path / 'idx'}",
                           "progress=false"], cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "created" in proc.stdout and "5 vectors" in proc.stdout
    proc = subprocess.run([*base, "search", f"index={tmp_path / 'idx'}", "query=music plays loud tonight",
                           "top_k=2"], cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0 and "a.txt:2" in proc.stdout.splitlines()[2], proc.stdout + proc.stderr[-2000:]
