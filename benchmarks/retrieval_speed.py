"""Retrieval engine speed: build time and single-query latency of flat, IVF and HNSW indexes, with recall@10
against exact search (issue 21's figure: 1M 512-d vectors on 2 cores, p99 < 5 ms at recall@10 >= 0.95).

    python benchmarks/retrieval_speed.py [n=1000000] [dim=512] [queries=1000] [threads=2] [nprobe=[16,32,64]]
        [ef_search=[32,64,128]] [out=runs/bench/retrieval_speed.json]

The vectors are random but clustered the way real embeddings are: ``clusters`` centres in a ``intrinsic``-
dimensional latent space, points spread around them, mapped into ``dim`` dimensions with a little isotropic
noise, L2-normalised. The queries are new points of the same distribution; the truth is the exact top 10
(faiss flat search). Latency is one query at a time (``index.search`` on a [1, dim] array), as a service sees it.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import faiss
import hydra
import numpy as np
from omegaconf import DictConfig

from common import runner
from common.retrieval import index as faiss_index
from common.retrieval.index import IndexConfig, auto_nlist


def clustered(n: int, dim: int, clusters: int, intrinsic: int, noise: float, seed: int,
              chunk: int = 100_000) -> np.ndarray:
    """``[n, dim]`` unit vectors around ``clusters`` centres of an ``intrinsic``-dimensional latent space."""
    rng = np.random.default_rng(seed)
    basis_rng = np.random.default_rng(12345)  # the same space and centres for the base and the query set
    centres = basis_rng.standard_normal((clusters, intrinsic)).astype(np.float32)  # [C, I]
    basis = basis_rng.standard_normal((intrinsic, dim)).astype(np.float32) / np.sqrt(intrinsic)  # [I, D]
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        latent = centres[rng.integers(0, clusters, m)] + 0.5 * rng.standard_normal((m, intrinsic), np.float32)
        x = latent @ basis + noise * rng.standard_normal((m, dim), np.float32)  # [m, D]
        out[start : start + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


@dataclass
class Row:
    """One index setting's figures."""

    index: str
    params: str
    build_s: float
    p50_ms: float
    p99_ms: float
    recall_at_10: float


def single_queries(index: faiss.Index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-query latencies (ms) and the ``[Q, k]`` row numbers found, searching one query at a time."""
    times = np.empty(len(queries))
    found = np.empty((len(queries), k), dtype=np.int64)
    for i in range(len(queries)):
        start = time.perf_counter()
        _, rows = index.search(queries[i : i + 1], k)
        times[i] = (time.perf_counter() - start) * 1000
        found[i] = rows[0]
    return times, found


def recall_at(found: np.ndarray, truth: np.ndarray) -> float:
    """Share of the true top-k found in the returned top-k, averaged over queries."""
    k = truth.shape[1]
    return float(np.mean([len(set(f) & set(t)) / k for f, t in zip(found, truth)]))


def measure(name: str, params: str, build_s: float, index: faiss.Index, queries: np.ndarray,
            truth: np.ndarray) -> Row:
    times, found = single_queries(index, queries, truth.shape[1])
    row = Row(name, params, build_s, float(np.percentile(times, 50)), float(np.percentile(times, 99)),
              recall_at(found, truth))
    print(f"  {name:<5} {params:<28} build {build_s:8.1f} s  p50 {row.p50_ms:7.3f} ms  p99 {row.p99_ms:7.3f} ms  "
          f"recall@10 {row.recall_at_10:.4f}", flush=True)
    return row


def build(cfg: IndexConfig, base: np.ndarray) -> tuple[faiss.Index, float]:
    start = time.perf_counter()
    index = faiss_index.create(cfg, base.shape[1], base)
    index.add(base)
    return index, time.perf_counter() - start


def run(cfg: DictConfig) -> dict[str, Any]:
    """Build the three index types over the same vectors, time single queries, print and write the table."""
    n, dim, k = int(cfg.n), int(cfg.dim), int(cfg.k)
    faiss.omp_set_num_threads(int(cfg.threads))
    clusters = int(cfg.clusters) if cfg.clusters else max(10, n // 1000)
    base = clustered(n, dim, clusters, int(cfg.intrinsic), float(cfg.noise), seed=0)
    queries = clustered(int(cfg.queries), dim, clusters, int(cfg.intrinsic), float(cfg.noise), seed=1)
    print(f"{n} x {dim} vectors in {clusters} clusters (latent dim {cfg.intrinsic}), {len(queries)} single queries, "
          f"top {k}, {cfg.threads} threads")
    rows: list[Row] = []
    index, seconds = build(IndexConfig(type="flat"), base)
    truth = index.search(queries, k)[1]  # [Q, k] exact neighbours (batched: the same answers, faster)
    rows.append(measure("flat", "exact", seconds, index, queries, truth))
    del index

    nlist = int(cfg.nlist) if cfg.nlist else auto_nlist(n)
    index, seconds = build(IndexConfig(type="ivf", nlist=nlist, train_size=int(cfg.train_size)), base)
    for nprobe in cfg.nprobe:
        faiss_index.set_search_params(index, IndexConfig(type="ivf", nprobe=int(nprobe)))
        rows.append(measure("ivf", f"nlist={faiss_index.cells(index)} nprobe={nprobe}", seconds, index, queries,
                            truth))
    del index

    hnsw = IndexConfig(type="hnsw", m=int(cfg.m), ef_construction=int(cfg.ef_construction))
    index, seconds = build(hnsw, base)
    for ef in cfg.ef_search:
        faiss_index.set_search_params(index, IndexConfig(type="hnsw", m=hnsw.m, ef_search=int(ef)), k)
        rows.append(measure("hnsw", f"m={hnsw.m} efC={hnsw.ef_construction} efS={ef}", seconds, index, queries,
                            truth))
    return report(cfg, rows, clusters)


def report(cfg: DictConfig, rows: list[Row], clusters: int) -> dict[str, Any]:
    """Print the table with ratios against flat and write the JSON."""
    flat = rows[0]
    target_ms, target_recall = float(cfg.target_p99_ms), float(cfg.target_recall)
    print(f"\n{'index':<5} {'params':<28} {'build s':>8} {'x flat':>7} {'p50 ms':>8} {'p99 ms':>8} {'speed-up':>8} "
          f"{'R@10':>6}  target")
    out = []
    for r in rows:
        meets = r.p99_ms < target_ms and r.recall_at_10 >= target_recall
        build_x = r.build_s / max(flat.build_s, 1e-9)
        speed_up = flat.p99_ms / max(r.p99_ms, 1e-9)
        print(f"{r.index:<5} {r.params:<28} {r.build_s:>8.1f} {build_x:>7.1f} {r.p50_ms:>8.3f} {r.p99_ms:>8.3f} "
              f"{speed_up:>8.1f} {r.recall_at_10:>6.3f}  {'yes' if meets else 'no'}")
        out.append({**asdict(r), "build_vs_flat": build_x, "p99_speedup_vs_flat": speed_up, "meets_target": meets})
    payload = {"n": int(cfg.n), "dim": int(cfg.dim), "queries": int(cfg.queries), "k": int(cfg.k),
               "threads": int(cfg.threads), "clusters": clusters, "intrinsic": int(cfg.intrinsic),
               "noise": float(cfg.noise), "target": {"p99_ms": target_ms, "recall_at_10": target_recall},
               "faiss": faiss.__version__, "rows": out}
    if cfg.out:
        runner.write_json(Path(cfg.out), payload)
        print(f"wrote {cfg.out}")
    return payload


@hydra.main(version_base="1.3", config_path="../configs/benchmarks", config_name="retrieval_speed")
def _cli(cfg: DictConfig) -> None:
    run(runner.require(cfg, "retrieval_speed", "benchmarks"))


def main(argv: list[str]) -> dict[str, Any]:
    """``python benchmarks/retrieval_speed.py`` in-process, ``argv`` its ``key=value`` words."""
    return runner.compose_and_run("retrieval_speed", argv, run, runner.BENCHMARK_CONFIGS, "benchmarks")


if __name__ == "__main__":
    _cli()
