"""Retrieval over a faiss index: python scripts/retrieve.py index|search|eval key=value ...

    python scripts/retrieve.py index model=<model dir> input=<folder> index=<index dir> [faiss.type=flat|ivf|hnsw]
    python scripts/retrieve.py search index=<index dir> query="..." top_k=10 [output=results.jsonl]
    python scripts/retrieve.py search index=<index dir> query_file=<file the model embeds>
    python scripts/retrieve.py eval index=<index dir> queries=<jsonl of query + relevant ids> [ks=[1,5,10]]

Keys and defaults: configs/inference/retrieve.yaml; the engine: common/retrieval/ (docs/retrieval.md). The first
bare word is the mode (``mode=`` works too). index exits with code 3 when some files were skipped (listed in
<index>/failed.jsonl), like every batch job of the suite.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import runner
from common.io import write_jsonl
from common.retrieval.engine import Retriever, with_search_params
from common.retrieval.evaluate import evaluate
from common.retrieval.folder import index_folder

log = logging.getLogger("retrieve")
MODES = ("index", "search", "eval")


def with_mode(argv: list[str]) -> list[str]:
    """``index model=...`` -> ``mode=index model=...``: the first bare word names the mode."""
    if argv and "=" not in argv[0] and not argv[0].startswith("-"):
        if argv[0] not in MODES:
            raise SystemExit(f"retrieve: unknown mode {argv[0]!r}; expected one of {', '.join(MODES)}")
        return [f"mode={argv[0]}", *argv[1:]]
    return argv


def run_index(cfg: DictConfig) -> int:
    if not cfg.input:
        raise SystemExit("retrieve index: input=<folder or file> required")
    model = cfg.model or _indexed_model(cfg.index)
    faiss_cfg: dict[str, Any] = OmegaConf.to_container(cfg.faiss)  # type: ignore[assignment]
    report = index_folder(cfg.input, cfg.index, model, faiss_cfg, dict(cfg.embedders), cfg.batch_size, cfg.cache,
                          cfg.progress)
    print(f"{report.action} {cfg.index}: {report.count} vectors; files: {report.job.summary()}; "
          f"{report.embedded} inputs embedded now")
    if report.job.failed:
        lines = "\n".join(f"  {f['path']}: {f['reason']}" for f in report.job.failed)
        log.warning("%d file(s) skipped (listed in %s/failed.jsonl):\n%s", len(report.job.failed), cfg.index, lines)
    return report.job.exit_code


def _indexed_model(index: str) -> str:
    """The model an existing index was built with (so a re-index needs no model=)."""
    r = Retriever.from_pretrained(index) if (Path(index) / "manifest.json").is_file() else None
    if r is None or r.model is None:
        raise SystemExit("retrieve index: model=<model dir> required for a new index")
    return r.model.path


def load(cfg: DictConfig) -> Retriever:
    r = Retriever.from_pretrained(cfg.index, cfg.model, dict(cfg.embedders) or None)
    return with_search_params(r, OmegaConf.to_container(cfg.faiss))  # type: ignore[arg-type]


def run_search(cfg: DictConfig) -> list[dict[str, Any]]:
    if (cfg.query is None) == (cfg.query_file is None):
        raise SystemExit("retrieve search: give exactly one of query=\"...\" and query_file=<path>")
    r = load(cfg)
    if cfg.query is not None:
        queries, vectors = [str(cfg.query)], r.embed_texts([str(cfg.query)])
    else:
        vectors = r.embed_file(cfg.query_file)
        queries = [cfg.query_file if len(vectors) == 1 else f"{cfg.query_file}:{n + 1}" for n in range(len(vectors))]
    rows = [{"query": q, "rank": rank, "id": i, "score": round(s, 6)}
            for q, hits in zip(queries, r.search(vectors, cfg.top_k)) for rank, (i, s) in enumerate(hits, start=1)]
    if cfg.output:
        write_jsonl(cfg.output, rows)
        print(f"wrote {len(rows)} results for {len(queries)} quer{'y' if len(queries) == 1 else 'ies'} to {cfg.output}")
    else:
        for q in queries:
            print(f"query: {q}\n{'rank':>4}  {'score':>7}  id")
            for row in (row for row in rows if row["query"] == q):
                print(f"{row['rank']:>4}  {row['score']:>7.4f}  {row['id']}")
    return rows


def run_eval(cfg: DictConfig) -> dict[str, Any]:
    if not cfg.queries:
        raise SystemExit("retrieve eval: queries=<jsonl of query and relevant ids> required")
    report = evaluate(load(cfg), cfg.queries, list(cfg.ks), cfg.depth)
    summary = {"queries": report.queries, "skipped": len(report.failed), "depth": report.depth, **report.metrics}
    print(f"{report.queries} queries ({len(report.failed)} skipped), searched to depth {report.depth}")
    for k in cfg.ks:
        print(f"  recall@{k:<4} {report.metrics[f'recall@{k}']:.4f}   hit@{k:<4} {report.metrics[f'hit@{k}']:.4f}")
    print(f"  MRR        {report.metrics['mrr']:.4f}")
    if cfg.output:
        runner.write_json(cfg.output, summary)
        print(f"wrote {cfg.output}")
    return summary


def run(cfg: DictConfig) -> Any:
    """Run the mode; errors in the inputs exit with one line naming the file and the reason."""
    runner.setup_threads(cfg.get("threads"))
    if cfg.get("threads"):
        import faiss

        faiss.omp_set_num_threads(int(cfg.threads))
    modes = {"index": run_index, "search": run_search, "eval": run_eval}
    if cfg.mode not in modes:
        raise SystemExit(f"retrieve: unknown mode {cfg.mode!r}; expected one of {', '.join(MODES)}")
    try:
        return modes[cfg.mode](cfg)
    except (ValueError, FileNotFoundError) as e:
        raise SystemExit(f"retrieve {cfg.mode}: {e}") from None


def _exit(result: Any) -> None:
    if isinstance(result, int) and result:
        sys.exit(result)


@hydra.main(version_base="1.3", config_path="../configs/inference", config_name="retrieve")
def cli(cfg: DictConfig) -> None:
    _exit(run(runner.require(cfg, "retrieve")))


def main(argv: list[str]) -> Any:
    """In-process entry (tests, notebooks): the same run as the command line ``argv``."""
    return runner.compose_and_run("retrieve", with_mode(argv), run)


if __name__ == "__main__":
    sys.argv = [sys.argv[0], *with_mode(sys.argv[1:])]
    cli()
