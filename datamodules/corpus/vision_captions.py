"""Captions of procedural scenes in six languages, realised by the shared grammar's realisers.

The grammar (datamodules/corpus/grammar) already handles articles, gender, case, numerals and word order for
colours, sizes, counts and spatial relations. Scenes add shapes, textures, absolute positions and three relations
(right of, above, below), so each language's lexicon is copied and extended with those words (``OVERLAY``, written
here in each lexicon's own row format). Texture and position are predicates ("the red circle is striped", "a big
red circle is on the left"): they go in the copy's ``colours`` table, which the realisers use for predicates.

The realisers look nouns up in the concept inventory (Hindi picks its posture verb by noun type), so each shape
borrows the id of an inanimate object concept (``PROXY``) and the lexicon copy gives that id the shape's words.
"""

from __future__ import annotations

import copy
import functools
import importlib
from typing import Any

from datamodules.corpus.grammar.lang_romance import Spanish
from datamodules.corpus.grammar.lang_slavic import Russian
from datamodules.corpus.grammar.meaning import Clause, Entity, Meaning
from datamodules.corpus.grammar.realise import REALISERS, Realiser, load_lexicon

LANGS = ("eng_Latn", "deu_Latn", "fra_Latn", "spa_Latn", "rus_Cyrl", "hin_Deva")
"""Caption languages of the vision corpus."""
SHAPES = ("circle", "square", "triangle", "star", "diamond", "cross")
COLOURS = ("red", "blue", "green", "yellow", "orange", "purple", "pink", "brown")
SIZES = ("big", "small")
TEXTURES = ("solid", "striped", "dotted", "checked")
POSITIONS = ("left", "right", "top", "bottom", "centre")
RELATIONS = ("left_of", "right_of", "above", "below")
PROXY = {"circle": "ball", "square": "box", "triangle": "plate", "star": "book", "diamond": "cup", "cross": "key"}
"""Shape -> the object concept id whose lexicon entry carries the shape's words."""



def _inv4(word: str) -> list[str]:
    """A Romance adjective row for a phrase that does not agree ("à pois")."""
    return [word, word, word, word]


OVERLAY: dict[str, dict[str, dict[str, Any]]] = {
    "eng_Latn": {
        "nouns": {"circle": ["circle", "circles"], "square": ["square", "squares"], "triangle": ["triangle",
                  "triangles"], "star": ["star", "stars"], "diamond": ["diamond", "diamonds"],
                  "cross": ["cross", "crosses"]},
        "colours": {"solid": "plain", "striped": "striped", "dotted": "dotted", "checked": "checked",
                    "left": "on the left", "right": "on the right", "top": "at the top", "bottom": "at the bottom",
                    "centre": "in the centre"},
        "relations": {"right_of": "to the right of", "above": "above", "below": "below"},
        "postures": {"lie": ["is", "are"]},
    },
    "deu_Latn": {
        "nouns": {"circle": ["m", "Kreis", "Kreise"], "square": ["n", "Quadrat", "Quadrate"],
                  "triangle": ["n", "Dreieck", "Dreiecke"], "star": ["m", "Stern", "Sterne"],
                  "diamond": ["f", "Raute", "Rauten"], "cross": ["n", "Kreuz", "Kreuze"]},
        "colours": {"solid": ["einfarbig", False], "striped": ["gestreift", False], "dotted": ["gepunktet", False],
                    "checked": ["kariert", False], "left": ["links", True], "right": ["rechts", True],
                    "top": ["oben", True], "bottom": ["unten", True], "centre": ["in der Mitte", True]},
        "relations": {"right_of": "rechts neben", "above": "über", "below": "unter"},
        "postures": {"lie": ["ist", "sind"]},
    },
    "fra_Latn": {
        "nouns": {"circle": ["m", "cercle", "cercles"], "square": ["m", "carré", "carrés"],
                  "triangle": ["m", "triangle", "triangles"], "star": ["f", "étoile", "étoiles"],
                  "diamond": ["m", "losange", "losanges"], "cross": ["f", "croix", "croix"]},
        "colours": {"solid": ["uni", "unie", "unis", "unies"], "striped": ["rayé", "rayée", "rayés", "rayées"],
                    "dotted": _inv4("à pois"), "checked": _inv4("à carreaux"), "left": _inv4("à gauche"),
                    "right": _inv4("à droite"), "top": _inv4("en haut"), "bottom": _inv4("en bas"),
                    "centre": _inv4("au centre")},
        "relations": {"right_of": "à droite de", "above": "au-dessus de", "below": "en dessous de"},
    },
    "spa_Latn": {
        "nouns": {"circle": ["m", "círculo", "círculos"], "square": ["m", "cuadrado", "cuadrados"],
                  "triangle": ["m", "triángulo", "triángulos"], "star": ["f", "estrella", "estrellas"],
                  "diamond": ["m", "rombo", "rombos"], "cross": ["f", "cruz", "cruces"]},
        "colours": {"solid": ["liso", "lisa", "lisos", "lisas"], "striped": _inv4("de rayas"),
                    "dotted": _inv4("de lunares"), "checked": _inv4("de cuadros"), "left": _inv4("a la izquierda"),
                    "right": _inv4("a la derecha"), "top": _inv4("arriba"), "bottom": _inv4("abajo"),
                    "centre": _inv4("en el centro")},
        "relations": {"right_of": "a la derecha de", "above": "encima de", "below": "debajo de"},
    },
    "rus_Cyrl": {
        # [gender, nom sg, gen sg, gen pl, prep sg, instr sg]
        "nouns": {"circle": ["m", "круг", "круга", "кругов", "круге", "кругом"],
                  "square": ["m", "квадрат", "квадрата", "квадратов", "квадрате", "квадратом"],
                  "triangle": ["m", "треугольник", "треугольника", "треугольников", "треугольнике",
                               "треугольником"],
                  "star": ["f", "звезда", "звезды", "звёзд", "звезде", "звездой"],
                  "diamond": ["m", "ромб", "ромба", "ромбов", "ромбе", "ромбом"],
                  "cross": ["m", "крест", "креста", "крестов", "кресте", "крестом"]},
        "colours": {"solid": ["однотонн", "hard"], "striped": ["полосат", "hard"], "dotted": ["в горошек", "inv"],
                    "checked": ["в клетку", "inv"], "left": ["слева", "inv"], "right": ["справа", "inv"],
                    "top": ["вверху", "inv"], "bottom": ["внизу", "inv"], "centre": ["в центре", "inv"]},
        "relations": {"right_of": ["справа от", "gen"], "above": ["над", "instr"], "below": ["под", "instr"]},
        "postures": {"lie": ["находится", "находятся"]},
        "adj_endings": {"inv": {case: ["", "", "", ""] for case in ("nom", "gen", "prep", "instr", "acc")}},
    },
    "hin_Deva": {
        # [gender, direct sg, direct pl, oblique sg]
        "nouns": {"circle": ["m", "वृत्त", "वृत्त", "वृत्त"], "square": ["m", "वर्ग", "वर्ग", "वर्ग"],
                  "triangle": ["m", "त्रिभुज", "त्रिभुज", "त्रिभुज"], "star": ["m", "तारा", "तारे", "तारे"],
                  "diamond": ["m", "समचतुर्भुज", "समचतुर्भुज", "समचतुर्भुज"],
                  "cross": ["m", "क्रॉस", "क्रॉस", "क्रॉस"]},
        "colours": {"solid": ["सादा", True], "striped": ["धारीदार", False], "dotted": ["बिंदीदार", False],
                    "checked": ["चारखानेदार", False], "left": ["बाईं ओर", False], "right": ["दाईं ओर", False],
                    "top": ["ऊपर", False], "bottom": ["नीचे", False], "centre": ["बीच में", False]},
        "relations": {"right_of": "के दाईं ओर", "above": "के ऊपर", "below": "के नीचे"},
        # "drawn": बना / बनी / बने है(ं), for every shape (the proxies are all of type "object")
        "postures": {"lie": {"default": "बना"}},
    },
}
"""Per language, what the scene captions add to the grammar lexicon (same row formats as lexicon/<lang>.json)."""


class _SceneSpanish(Spanish):
    """Spanish places with "estar" ("está a la izquierda"), properties with "ser" ("es de rayas")."""

    def clause(self, c: Clause, ante: Entity | None) -> str:
        if c.verb == "be" and c.attribute in POSITIONS:
            return f"{self.np(c.subject)} {self.located[c.subject.count > 1]} {self.lex['colours'][c.attribute][0]}"
        return super().clause(c, ante)


class _SceneRussian(Russian):
    """Russian predicates agree in number too ("три круга полосатые"); the grammar only predicates singulars."""

    def clause(self, c: Clause, ante: Entity | None) -> str:
        if c.verb == "be" and c.subject.count > 1 and c.attribute:
            return f"{self.np(c.subject)} {self.adj('colours', c.attribute, 'nom', 'pl', True)}"
        return super().clause(c, ante)


_CLASSES: dict[str, type[Realiser]] = {"spa_Latn": _SceneSpanish, "rus_Cyrl": _SceneRussian}


@functools.cache
def lexicon(lang: str) -> dict[str, Any]:
    """The grammar lexicon of ``lang`` extended with the scene words (shapes under their ``PROXY`` ids)."""
    if lang not in OVERLAY:
        raise KeyError(f"no scene captions for {lang!r}; known: {', '.join(LANGS)}")
    lex = copy.deepcopy(load_lexicon(lang))
    extra = OVERLAY[lang]
    lex["nouns"].update({PROXY[shape]: row for shape, row in extra["nouns"].items()})
    for table in ("colours", "relations", "postures", "adj_endings"):
        if table in extra:
            lex.setdefault(table, {}).update(extra[table])
    return lex


@functools.cache
def scene_realiser(lang: str) -> Realiser:
    """The grammar's realiser of ``lang`` over the extended lexicon."""
    lex = lexicon(lang)
    if lang in _CLASSES:
        return _CLASSES[lang](lex)
    module, _, name = REALISERS[lang].rpartition(".")
    cls: type[Realiser] = getattr(importlib.import_module(module), name)
    return cls(lex)


def shape_forms(lang: str, shape: str) -> list[str]:
    """Every word form of ``shape`` in ``lang`` (tests check that captions name the right shape)."""
    return [w for w in lexicon(lang)["nouns"][PROXY[shape]] if w not in ("m", "f", "n")]


def entity(obj: dict[str, Any], definite: bool = False, size: bool = True) -> Entity:
    """The grammar entity of a scene object (``obj``: shape, colour, size, count)."""
    count = int(obj["count"])
    return Entity(PROXY[obj["shape"]], count, obj["colour"], obj["size"] if size else None, definite and count == 1)


def meanings(scene: dict[str, Any]) -> tuple[Meaning, list[Meaning]]:
    """The short caption's meaning, and the long caption's meanings (one per sentence).

    The short caption names every object with its size, colour, count and place in one sentence, so it identifies
    the scene up to textures; the long one adds each object's texture and the relations between objects.
    """
    objs, rels = scene["objects"], scene["relations"]
    short = Meaning(tuple(Clause(entity(o), "be", attribute=o["position"]) for o in objs))
    long = [Meaning((Clause(entity(o), "be", attribute=o["position"]),
                     Clause(entity(o, definite=True, size=False), "be", attribute=o["texture"])), "long")
            for o in objs]
    relations = [Meaning((Clause(entity(objs[r["subject"]]), "lie", r["relation"], entity(objs[r["ground"]])),))
                 for r in rels]
    return short, long + relations


def captions(scene: dict[str, Any], langs: tuple[str, ...] | list[str] = LANGS) -> dict[str, dict[str, str]]:
    """``{lang: {"short": ..., "long": ...}}`` for a scene's attribute structure."""
    short, long = meanings(scene)
    out = {}
    for lang in langs:
        r = scene_realiser(lang)
        out[lang] = {"short": r.realise(short), "long": " ".join(r.realise(m) for m in long)}
    return out
