"""Speech batches with in-context examples: each utterance may carry a few others of its language."""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from datamodules.speech import SpeechDataModule, SpeechDataset, collate_speech

RESPELT = "und"
"""Language code of a respelt episode (ISO 639-3 'undetermined'): it has no language token."""

RESPELL_LETTERS = tuple(
    chr(c) for c in [*range(0x61, 0x7B), *range(0xE0, 0x180), *range(0x3B1, 0x3CA), *range(0x430, 0x450)]
    if chr(c).isalpha() and chr(c).islower()
)
"""Letters a respelt episode may write: lowercase Latin (basic, Latin-1, Extended-A), Greek and Cyrillic."""


def respell(texts: Sequence[str], rng: random.Random, max_rules: int = 4) -> tuple[list[str], dict[str, str]] | None:
    """The same texts written in a made-up orthography: 1..``max_rules`` letters or letter pairs of the first
    text that the others also use are each rewritten as one letter none of the texts has.

    Every rule is applied to every text (pairs before single letters), so the rest of the episode shows how the
    first text is now spelt. Returns the texts and the rules (unit -> letter), or ``None`` when the texts share
    no letter.
    """
    query, rest = texts[0], " ".join(texts[1:])
    units = {w[i : i + n] for w in query.split() for n in (1, 2) for i in range(len(w) - n + 1)}
    shared = sorted(u for u in units if u.isalpha() and u in rest)
    if not shared:
        return None
    used = set("".join(texts))
    fresh = [c for c in RESPELL_LETTERS if c not in used]
    rules: dict[str, str] = {}
    for unit in rng.sample(shared, min(len(shared), rng.randint(1, max_rules))):
        if not any(unit in r or r in unit for r in rules):  # rules may not overlap
            rules[unit] = fresh.pop(rng.randrange(len(fresh)))
    pattern = re.compile("|".join(re.escape(u) for u in sorted(rules, key=len, reverse=True)))
    return [pattern.sub(lambda m: rules[m.group(0)], t) for t in texts], rules


class ContextSpeechDataset(Dataset):
    """A ``SpeechDataset`` whose items get 1..``max_examples`` short same-language examples with probability ``prob``.

    Examples come from the same split's short utterances (at most ``max_seconds``), never the item itself;
    the draw uses the process-wide ``random`` state, which Lightning seeds per worker. With probability
    ``respell_prob`` an item with examples is respelt together with them (``respell``) and its language becomes
    ``RESPELT``: eight languages stand in for many unseen orthographies, which only the examples can teach.
    """

    def __init__(self, base: SpeechDataset, prob: float, max_examples: int, max_seconds: float,
                 respell_prob: float = 0.0):
        self.base, self.prob, self.max_examples, self.respell_prob = base, prob, max_examples, respell_prob
        self.pool: dict[str, list[int]] = defaultdict(list)
        for i, row in enumerate(base.rows):
            if float(row.get("duration", max_seconds)) <= max_seconds:
                self.pool[row.get("lang", "und")].append(i)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> dict[str, Any] | None:
        item = self.base[i]
        if item is None:
            return None
        context: list[dict[str, Any]] = []
        pool = [j for j in self.pool.get(item["lang"], []) if j != i]
        if pool and self.max_examples > 0 and random.random() < self.prob:
            for j in random.sample(pool, min(len(pool), random.randint(1, self.max_examples))):
                ex = self.base[j]
                if ex is not None and ex["text"]:
                    context.append(ex)
        item["context"] = context
        if context and random.random() < self.respell_prob:
            done = respell([item["text"]] + [c["text"] for c in context], random.Random(random.getrandbits(64)))
            if done is not None:
                for x, text in zip([item, *context], done[0]):
                    x["text"], x["lang"] = text, RESPELT
        return item


def collate_context(items: list[dict[str, Any] | None]) -> dict[str, Any] | None:
    """``collate_speech`` plus the examples of every item, padded into one ``ctx_wave`` batch.

    ``ctx_counts[b]`` examples belong to item ``b``, in order.
    """
    good = [x for x in items if x is not None]
    batch = collate_speech(list(items))
    if batch is None:
        return None
    ctx = [c for x in good for c in x.get("context", [])]
    batch["ctx_counts"] = [len(x.get("context", [])) for x in good]
    batch["ctx_wave_lens"] = torch.tensor([len(c["wave"]) for c in ctx], dtype=torch.long)
    batch["ctx_wave"] = torch.zeros(len(ctx), int(batch["ctx_wave_lens"].max()) if ctx else 0)
    for i, c in enumerate(ctx):
        batch["ctx_wave"][i, : len(c["wave"])] = c["wave"]
    batch["ctx_texts"] = [c["text"] for c in ctx]
    batch["ctx_langs"] = [c["lang"] for c in ctx]
    return batch


class SpeechContextDataModule(SpeechDataModule):
    """``SpeechDataModule`` for LLM-ASR: byte targets (no character vocabulary) and in-context examples in training."""

    def __init__(self, *args: Any, context_prob: float = 0.5, context_max_examples: int = 3,
                 context_max_seconds: float = 3.0, context_respell: float = 0.0, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.save_hyperparameters(logger=False)

    def model_kwargs(self) -> dict[str, Any]:
        return {"langs": self.langs()}

    def _loader(self, stage: str, train: bool) -> DataLoader:
        rows = self.rows(stage)
        sampler = self.batch_sampler(rows, train)
        base = SpeechDataset(rows, None, self.hp.speed_perturb if train else None, self.hp.bad_audio_log, stage)
        ds = ContextSpeechDataset(base, self.hp.context_prob if train else 0.0, self.hp.context_max_examples,
                                  self.hp.context_max_seconds, self.hp.context_respell if train else 0.0)
        workers = self.hp.num_workers
        return DataLoader(ds, batch_sampler=sampler, collate_fn=collate_context, num_workers=workers,
                          persistent_workers=workers > 0, pin_memory=torch.cuda.is_available())
