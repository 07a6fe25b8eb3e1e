"""Speech synthesis: python scripts/synthesize.py model=<bundle> text="..." lang=deu_Latn prompt=<wav> \
    prompt_text="..." output=out.wav

task=tts|sample|continue|edit|denoise picks the Voicebox task (which keys each takes: speech/tts/infer.py and
docs/tts.md); nfe=, method=, guidance=, sway=, seed=, n= steer the sampler. With input=<requests.jsonl | texts.txt>
the requests are synthesized into the folder output= on common.batch_job: one wav per request, manifest.jsonl
written atomically at the end, a re-run skips finished requests, bad ones go to failed.jsonl with the reason.
Exit code 0 when everything was synthesized, 3 when some requests failed; a bad single request exits with one line
saying why and writes nothing.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from common import runner
from speech.tts.infer import FAILED, MANIFEST, call_args, read_requests, synthesize_batch, write_outputs
from speech.tts.synthesizer import Options, Synthesizer

log = logging.getLogger("synthesize")
REQUEST_KEYS = ("text", "lang", "prompt", "prompt_text", "prompt_lang", "span", "seed", "n")


def run(cfg: DictConfig) -> int:
    """Synthesize one request into ``cfg.output`` or a batch into the folder ``cfg.output``; the exit code."""
    runner.setup_threads(cfg.get("threads"))
    options = Options(int(cfg.nfe), str(cfg.method), float(cfg.guidance), float(cfg.sway))
    request = {k: OmegaConf.to_container(cfg[k]) if OmegaConf.is_config(cfg[k]) else cfg[k] for k in REQUEST_KEYS}
    if cfg.input is None:  # check the request before the model loads
        if Path(cfg.output).suffix.lower() != ".wav":
            raise SystemExit(f"synthesize: output={cfg.output} must end in .wav (batch mode: set input=)")
        try:
            call_args(cfg.task, request, options)
        except ValueError as e:
            raise SystemExit(f"synthesize: {e}") from None
    else:
        items = read_requests(cfg.input, request)
    try:
        synth = Synthesizer.from_pretrained(cfg.model, cfg.get("duration"), cfg.get("vocoder"), cfg.device)
    except ValueError as e:
        raise SystemExit(f"synthesize: {e}") from None

    if cfg.input is None:
        try:
            outs = synth.run(cfg.task, **call_args(cfg.task, request, options))
        except ValueError as e:
            raise SystemExit(f"synthesize: {e}") from None
        out = Path(cfg.output)
        names = write_outputs(outs, out.parent, out.stem)
        log.info("wrote %s (%.2f s, seed %s)", ", ".join(str(out.parent / n) for n in names), outs[0].seconds,
                 ", ".join(str(o.seed) for o in outs))
        return 0

    report = synthesize_batch(synth, items, cfg.output, cfg.task, options, bool(cfg.progress))
    if report.failed:
        lines = "\n".join(f"  {f['id']}: {f['reason']}" for f in report.failed[:20])
        log.warning("%d request(s) failed (all in %s):\n%s", len(report.failed), Path(cfg.output) / FAILED, lines)
    log.info("%s -> %s", report.summary(), Path(cfg.output) / MANIFEST)
    return report.exit_code


@hydra.main(version_base="1.3", config_path="../configs/inference", config_name="synthesize")
def main(cfg: DictConfig) -> None:
    code = run(runner.require(cfg, "synthesize"))
    if code:
        sys.exit(code)


if __name__ == "__main__":
    main()
