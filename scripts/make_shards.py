"""Pack a speech manifest into WebDataset tar shards for streamed training.

    python scripts/make_shards.py manifest=data/speech/train.jsonl output=data/speech/shards/train [shard_size=1000]

Each utterance is loaded as 16 kHz mono and stored as 16-bit audio with its transcript and metadata;
``output`` gets ``shard-000000.tar`` ..., one ``shard-NNNNNN.json`` sidecar per shard and the index
``shards.json``. Re-running keeps the shards already made from the same rows and writes the rest.
Unusable audio is skipped and listed (``<output>/bad_inputs.jsonl``); the exit code is then 3.
Train on them with ``python scripts/train.py experiment=asr_lowres data=speech_shards data.train_shards=<output>``.

Options: shard_size=1000 (utterances a shard), format=flac|wav, workers=0 (decoding processes), bad_log=<path>.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from common.runner import parse_kv_args
from datamodules.shards import INDEX, write_shards

DEFAULTS = {"manifest": "", "output": "", "shard_size": "1000", "format": "flac", "workers": "0", "bad_log": ""}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_kv_args(sys.argv[1:] if argv is None else argv, DEFAULTS, required=("manifest", "output"),
                         usage=__doc__ or "")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    index = write_shards(args["manifest"], args["output"], shard_size=int(args["shard_size"]),
                         audio_format=args["format"], workers=int(args["workers"]),
                         bad_audio_log=args["bad_log"] or None)
    print(f"{index['samples']} utterances ({index['seconds'] / 3600:.2f} h) in {len(index['shards'])} shard(s) "
          f"-> {Path(args['output']) / INDEX}")
    if index["skipped"]:
        lines = "\n".join(f"  {s['audio']}: {s['reason']}" for s in index["skipped"])
        print(f"{len(index['skipped'])} file(s) skipped:\n{lines}", file=sys.stderr)
    return index


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(3 if main()["skipped"] else 0)
