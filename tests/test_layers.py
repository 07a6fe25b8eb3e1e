"""Imports run one way: common and text at the bottom, shared speech and data pieces, families, then entry points.

Every import statement counts, also those inside functions: a late import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("common", "text", "speech", "datamodules", "vision", "music")
FAMILIES = ("speech.asr", "speech.ssl", "speech.tts", "speech.source_trace", "vision.flame", "vision.sign",
            "music.clamp")
"""Model families: each may use the layers below it, never another family."""


def layer(module: str) -> int:
    """0 common, 1 text, 2 shared speech and data pieces, 3 the families."""
    if module.split(".")[0] == "common":
        return 0
    if module.split(".")[0] == "text":
        return 1
    if family(module):
        return 3
    return 2


def family(module: str) -> str | None:
    return next((f for f in FAMILIES if module == f or module.startswith(f + ".")), None)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Suite modules that a file imports (absolute names)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return {m for m in out if m.split(".")[0] in PACKAGES}


def back_edges() -> list[str]:
    bad = []
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            src = module_name(path)
            for dst in sorted(imports(path)):
                if layer(dst) > layer(src):
                    bad.append(f"{src} (layer {layer(src)}) imports {dst} (layer {layer(dst)})")
                elif family(src) and family(dst) and family(src) != family(dst):
                    bad.append(f"family {family(src)} imports family {family(dst)} ({src} -> {dst})")
    return bad


def test_no_module_imports_a_layer_above_it_or_another_family() -> None:
    assert back_edges() == []


def test_the_walker_sees_late_imports_and_cross_family_edges(tmp_path: Path) -> None:
    f = tmp_path / "x.py"
    f.write_text("def g():\n    from speech.asr.hub import load_model\n    import common.io\n")
    assert imports(f) == {"speech.asr.hub", "common.io"}
    assert layer("common.hub") < layer("text.towers") < layer("speech.audio") < layer("speech.asr.hub")
    assert layer("datamodules.manifest") == layer("speech.encoders.wav2vec2")
    assert family("speech.ssl.module") == "speech.ssl" and family("speech.audio") is None
