"""Bitext retrieval error (xsim) and cross-lingual semantic search over aligned sentence embeddings.

xsim follows LASER's Tatoeba/FLORES evaluation (Artetxe & Schwenk, 2019, "Margin-based Parallel Corpus Mining
with Multilingual Sentence Embeddings"): each source sentence retrieves its nearest target under the ratio margin
``cos(x, y) / ((mean_k cos(x, NN_k(x)) + mean_k cos(y, NN_k(y))) / 2)``, and the error is the share of sources
whose retrieved target is not their translation. Row ``i`` of every language's matrix is the same meaning.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from common.io import atomic_open
from text.parallel import PIVOT, read_parallel

MARGINS = ("ratio", "cosine")


def _knn_mean(sim: Tensor, k: int) -> Tensor:
    """Mean of each row's ``k`` largest similarities, ``[N]``."""
    return sim.topk(min(k, sim.shape[1]), dim=1).values.mean(1)


def margin_scores(x: Tensor, y: Tensor, margin: str = "ratio", k: int = 4) -> Tensor:
    """Scores ``[N, M]`` of every source row of ``x`` against every target row of ``y``."""
    if margin not in MARGINS:
        raise ValueError(f"unknown margin {margin!r}; known margins: {', '.join(MARGINS)}")
    sim = F.normalize(x.float(), dim=-1) @ F.normalize(y.float(), dim=-1).T  # [N, M]
    if margin == "cosine":
        return sim
    fwd = _knn_mean(sim, k)  # [N]
    bwd = _knn_mean(sim.T, k)  # [M]
    return sim / ((fwd[:, None] + bwd[None, :]) / 2).clamp(min=1e-6)


def xsim_error(src: Tensor, tgt: Tensor, margin: str = "ratio", k: int = 4) -> float:
    """Share of sources whose best-scoring target is not the aligned one (rows are aligned)."""
    if src.shape[0] != tgt.shape[0]:
        raise ValueError(f"aligned sets must have equal sizes, got {src.shape[0]} and {tgt.shape[0]}")
    if src.shape[0] == 0:
        raise ValueError("xsim needs at least one sentence pair")
    best = margin_scores(src, tgt, margin, k).argmax(1)  # [N]
    return float((best != torch.arange(src.shape[0], device=best.device)).float().mean())


def xsim_matrix(embs: dict[str, Tensor], margin: str = "ratio", k: int = 4) -> dict[str, dict[str, float]]:
    """``{src: {tgt: error}}`` for every ordered pair of distinct languages."""
    langs = sorted(embs)
    return {a: {b: xsim_error(embs[a], embs[b], margin, k) for b in langs if b != a} for a in langs}


def pairwise_matrix(embs: Mapping[str, tuple[Sequence[int], Tensor]], margin: str = "ratio", k: int = 4,
                    min_rows: int = 1) -> dict[str, dict[str, float]]:
    """``{src: {tgt: error}}`` where each language has embeddings of some rows (``(row ids, [N, E])``).

    A pair is scored on the rows both languages have, and left out when they share fewer than ``min_rows``.
    """
    pos = {lang: {int(r): i for i, r in enumerate(ids)} for lang, (ids, _) in embs.items()}
    langs = sorted(embs)
    out: dict[str, dict[str, float]] = {a: {} for a in langs}
    for a in langs:
        for b in langs:
            shared = sorted(pos[a].keys() & pos[b].keys()) if a != b else []
            if len(shared) >= max(min_rows, 1):
                ia = torch.tensor([pos[a][r] for r in shared])
                ib = torch.tensor([pos[b][r] for r in shared])
                out[a][b] = xsim_error(embs[a][1][ia], embs[b][1][ib], margin, k)
    return out


def mean_error(matrix: dict[str, dict[str, float]], langs: Sequence[str] | None = None) -> float:
    """Mean error over ordered pairs whose both languages are in ``langs`` (all when ``None``)."""
    keep = set(langs) if langs is not None else set(matrix)
    vals = [e for a, row in matrix.items() if a in keep for b, e in row.items() if b in keep]
    return sum(vals) / len(vals) if vals else float("nan")


def pivot_figures(matrix: dict[str, dict[str, float]], langs: Sequence[str], pivot: str = PIVOT,
                  ) -> dict[str, float]:
    """Mean and worst error between ``pivot`` and each other language of ``langs`` (both directions), and among the
    other languages themselves (every ordered pair): the figures a target such as "<= 10% with English, <= 20%
    between any two" is read from. Empty when ``pivot`` is not among ``langs``."""
    if pivot not in langs or pivot not in matrix:
        return {}
    others = [lang for lang in langs if lang != pivot and lang in matrix]
    with_pivot = [e for b in others for e in (matrix[pivot].get(b), matrix[b].get(pivot)) if e is not None]
    among = [e for a in others for b, e in matrix[a].items() if b in others]
    out: dict[str, float] = {}
    for name, vals in (("pivot", with_pivot), ("others", among)):
        if vals:
            out[f"mean_xsim_{name}"] = sum(vals) / len(vals)
            out[f"max_xsim_{name}"] = max(vals)
    return out


def search_recall(queries: Tensor, docs: Tensor, ks: Sequence[int] = (1, 5)) -> dict[str, float]:
    """Recall@k of cosine search: query ``i`` should find document ``i`` among all documents."""
    sim = F.normalize(queries.float(), dim=-1) @ F.normalize(docs.float(), dim=-1).T  # [N, M]
    own = sim.diagonal()[:, None]  # [N, 1]
    rank = (sim > own).sum(1)  # [N]: documents scored strictly above the right one
    return {f"recall@{k}": float((rank < k).float().mean()) for k in ks}


def format_matrix(matrix: dict[str, dict[str, float]], title: str = "xsim error %") -> str:
    """A source x target table in percent; the diagonal is blank."""
    langs = sorted(matrix)
    width = max(9, *(len(lang) + 1 for lang in langs))
    lines = [f"{title:<{width}}" + "".join(f"{b:>{width}}" for b in langs)]
    for a in langs:
        # A pair with too few shared rows (pairwise_matrix) is shown as "."
        cells = "".join(f"{'-':>{width}}" if a == b else f"{'.':>{width}}" if b not in matrix[a]
                        else f"{100 * matrix[a][b]:>{width}.2f}" for b in langs)
        lines.append(f"{a:<{width}}" + cells)
    return "\n".join(lines)


def plot_heatmap(matrix: dict[str, dict[str, float]], path: str | Path, title: str = "xsim error (%)") -> Path:
    """Write a source x target heatmap PNG (matplotlib, Agg backend), atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    langs = sorted(matrix)
    grid = [[100 * matrix[a][b] if b in matrix[a] else float("nan") for b in langs] for a in langs]
    fig, ax = plt.subplots(figsize=(1.0 + 0.7 * len(langs), 0.8 + 0.6 * len(langs)))
    im = ax.imshow(grid, cmap="viridis_r", vmin=0)
    ax.set_xticks(range(len(langs)), langs, rotation=45, ha="right")
    ax.set_yticks(range(len(langs)), langs)
    ax.set_xlabel("target")
    ax.set_ylabel("source")
    for i, row in enumerate(grid):
        for j, v in enumerate(row):
            if v == v:  # not NaN: the diagonal and pairs without enough shared rows stay blank
                ax.text(j, i, f"{v:.1f}", ha="center", va="center", fontsize=7, color="white" if v > 50 else "black")
    fig.colorbar(im, ax=ax)
    ax.set_title(title)
    fig.tight_layout()
    path = Path(path)
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=110)
    plt.close(fig)
    return path


def write_report(matrix: dict[str, dict[str, float]], out_dir: str | Path, extra: dict[str, object]) -> Path:
    """``xsim.json`` (matrix + extra figures) and ``xsim.png`` in ``out_dir``."""
    out = Path(out_dir)
    with atomic_open(out / "xsim.json", "w", encoding="utf-8") as f:
        json.dump({"xsim_error": matrix, **extra}, f, indent=2, ensure_ascii=False)
    plot_heatmap(matrix, out / "xsim.png")
    return out


def evaluate_encoder(model_dir: str | Path, manifest: str | Path, out_dir: str | Path, limit: int | None = 1000,
                     batch_size: int = 128, langs: Sequence[str] | None = None, min_rows: int = 20,
                     ) -> dict[str, object]:
    """xsim (ratio margin and cosine) and search recall of a saved sentence encoder on a parallel split.

    ``langs``: the languages scored, by default the model's (trained and held out) that the split has, else all
    of the split's. The first ``limit`` rows with two of them are read, and each pair is scored on the rows both
    languages have (``pairwise_matrix``; pairs sharing fewer than ``min_rows`` are left out), so real text with
    gaps works as well as a fully aligned split. Writes ``xsim.json`` and ``xsim.png`` to ``out_dir``.
    """
    from text.sentence_encoder import read_config
    from text.towers import TextTowerConfig, build_text_tower

    config = read_config(model_dir)
    rows = read_parallel(manifest)
    present = {lang for r in rows for lang in r}
    known = set(langs or [*config.get("langs", []), *config.get("held_out", [])]) & present
    langs = sorted(known or present)
    rows = [r for r in rows if sum(lang in r for lang in langs) >= 2][:limit]
    if not rows:
        raise ValueError(f"{manifest}: no row has two of the languages {', '.join(langs)}")
    tower = build_text_tower(TextTowerConfig(kind="sentence_encoder", path=str(model_dir)))
    embs: dict[str, tuple[Sequence[int], Tensor]] = {}
    for lang in langs:
        ids = [i for i, r in enumerate(rows) if lang in r]
        embs[lang] = (ids, tower.encode([rows[i][lang] for i in ids], lang, batch_size))
    ratio = pairwise_matrix(embs, "ratio", min_rows=min_rows)
    cosine = pairwise_matrix(embs, "cosine", min_rows=min_rows)
    trained = [lang for lang in langs if lang in config.get("langs", [])] or langs
    recall = {a: {b: _pair_recall(embs[a], embs[b]) for b in ratio[a]} for a in langs}
    summary = {
        "model": str(model_dir), "manifest": str(manifest), "sentences": len(rows),
        "trained_langs": trained, "held_out": [lang for lang in langs if lang not in trained],
        "mean_xsim_trained": mean_error(ratio, trained), "mean_xsim_cosine_trained": mean_error(cosine, trained),
        "mean_recall@1_trained": _mean_recall(recall, trained, "recall@1"),
        "mean_recall@5_trained": _mean_recall(recall, trained, "recall@5"),
        **pivot_figures(ratio, trained),
    }
    write_report(ratio, out_dir, {**summary, "xsim_cosine_error": cosine, "search_recall": recall})
    return {**summary, "xsim_error": ratio}


def _pair_recall(a: tuple[Sequence[int], Tensor], b: tuple[Sequence[int], Tensor]) -> dict[str, float]:
    """search_recall on the rows both languages have."""
    pa, pb = {r: i for i, r in enumerate(a[0])}, {r: i for i, r in enumerate(b[0])}
    shared = sorted(pa.keys() & pb.keys())
    return search_recall(a[1][[pa[r] for r in shared]], b[1][[pb[r] for r in shared]])


def _mean_recall(recall: dict[str, dict[str, dict[str, float]]], langs: Sequence[str], key: str) -> float:
    vals = [m[key] for a, row in recall.items() if a in langs for b, m in row.items() if b in langs]
    return sum(vals) / len(vals) if vals else float("nan")
