"""Music words of the tune descriptions, per language (written for this corpus; see music_text for how they combine).

Each entry lists alternatives (a phrase is drawn per description); a phrase that agrees with the genre noun is a
``{gender: form}`` dict. ``*_mod`` phrases modify the tune's noun phrase ("in D major", "for violin"), ``*_cl``
ones are sentences about "the piece". Placeholders: ``{t}`` tonic name (``{tl}`` lower case), ``{m}`` meter,
``{n}`` number, ``{beats}`` the counted noun for ``{n}``, ``{i}`` instrument, ``{np}`` the noun phrase, ``{mods}``
its modifiers.
"""

from __future__ import annotations

from typing import Any

Lex = dict[str, Any]

_TONIC_SOLFEGE = {"C": "do", "D": "ré", "E": "mi", "F": "fa", "G": "sol", "A": "la", "B": "si"}


def _tonics(names: dict[str, str], flat: str, sharp: str, sep: str = " ") -> dict[str, str]:
    """Tonic spelling ("Bb") -> its name in a language ("si bémol")."""
    out = {}
    for t in ("C", "D", "E", "F", "G", "A", "B", "Bb", "Eb", "F#", "C#"):
        base = names[t[0]]
        out[t] = base + ({"b": sep + flat, "#": sep + sharp}.get(t[1:], ""))
    return out


ENG: Lex = {
    "genre": {"jig": ("n", "jig"), "reel": ("n", "reel"), "hornpipe": ("n", "hornpipe"), "waltz": ("n", "waltz"),
              "march": ("n", "march"), "polka": ("n", "polka"), "chorale": ("n", "chorale")},
    "np": ["{a} {adj} {noun}", "{a} {adj} {noun} tune"],
    "tempo": {"fast": ["fast", "lively", "quick"], "moderate": ["moderate", "medium-paced", "steady"],
              "slow": ["slow", "gentle", "unhurried"]},
    "tonic": _tonics({k: k for k in "CDEFGAB"}, "flat", "sharp", "-"),
    "key_mod": {"major": ["in {t} major"], "minor": ["in {t} minor"], "dorian": ["in {t} dorian",
                "in the dorian mode on {t}"], "mixolydian": ["in {t} mixolydian", "in the mixolydian mode on {t}"]},
    "key_cl": {"major": ["The key is {t} major."], "minor": ["The key is {t} minor.", "It is in {t} minor."],
               "dorian": ["The mode is {t} dorian."], "mixolydian": ["The mode is {t} mixolydian."]},
    "meter_mod": ["in {m} time", "in {m}"], "meter_cl": ["The time signature is {m}.", "It is written in {m}."],
    "bpm_mod": ["at {n} beats per minute", "at {n} bpm"], "bpm_cl": ["The tempo is {n} beats per minute."],
    "instr_mod": ["for {i}", "played on the {i}"], "instr_cl": ["The {i} plays it.", "The instrument is the {i}."],
    "instr": {"Acoustic Grand Piano": "piano", "Church Organ": "church organ", "Accordion": "accordion",
              "Violin": ["violin", "fiddle"], "String Ensemble 1": "string ensemble", "Choir Aahs": "choir",
              "Trumpet": "trumpet", "Clarinet": "clarinet", "Piccolo": "piccolo", "Flute": "flute",
              "Pan Flute": "pan flute", "Banjo": "banjo", "Bagpipe": "bagpipes"},
    "contour_mod": {"ascending": ["with a rising melody", "with an ascending melody"],
                    "descending": ["with a falling melody", "with a descending melody"],
                    "arch": ["with an arch-shaped melody", "whose melody rises and then falls"],
                    "valley": ["with a melody that dips and rises again", "with a valley-shaped melody"]},
    "contour_cl": {"ascending": ["The melody rises.", "The melody climbs steadily."],
                   "descending": ["The melody falls.", "The melody steps downwards."],
                   "arch": ["The melody rises and then falls back."],
                   "valley": ["The melody sinks and then climbs again."]},
    "register_mod": {"high": ["in a high register"], "mid": ["in a middle register"], "low": ["in a low register"]},
    "register_cl": {"high": ["The piece sits high."], "mid": ["The piece sits in the middle register."],
                    "low": ["The piece sits low.", "The piece lies in a low register."]},
    "dyn_mod": {"p": ["played softly", "played quietly"], "mf": ["played moderately loud", "at medium volume"],
                "f": ["played loudly", "played strongly"]},
    "dyn_cl": {"p": ["It is played softly."], "mf": ["It is played at a medium volume."],
               "f": ["It is played loudly."]},
    "intro": ["This is {np}{mods}.", "{np}{mods}.", "Here is {np}{mods}.", "You hear {np}{mods}."],
}

DEU: Lex = {
    "genre": {"jig": ("f", "Jig"), "reel": ("m", "Reel"), "hornpipe": ("f", "Hornpipe"), "waltz": ("m", "Walzer"),
              "march": ("m", "Marsch"), "polka": ("f", "Polka"), "chorale": ("m", "Choral")},
    "np": ["{art} {adj} {noun}"], "art": {"m": "ein", "f": "eine", "n": "ein"},
    "tempo": {"fast": [{"m": "schneller", "f": "schnelle"}, {"m": "lebhafter", "f": "lebhafte"}],
              "moderate": [{"m": "gemäßigter", "f": "gemäßigte"}, {"m": "ruhiger", "f": "ruhige"}],
              "slow": [{"m": "langsamer", "f": "langsame"}, {"m": "getragener", "f": "getragene"}]},
    # German calls B natural H and B flat B; minor keys are written lower case ("h-Moll", {tl})
    "tonic": {**_tonics({k: k for k in "CDEFGAB"}, "", ""), "B": "H", "Bb": "B", "Eb": "Es", "F#": "Fis", "C#": "Cis"},
    "key_mod": {"major": ["in {t}-Dur"], "minor": ["in {tl}-Moll"], "dorian": ["in {t}-Dorisch",
                "im dorischen Modus auf {t}"], "mixolydian": ["in {t}-Mixolydisch", "im mixolydischen Modus auf {t}"]},
    "key_cl": {"major": ["Die Tonart ist {t}-Dur."], "minor": ["Die Tonart ist {tl}-Moll."],
               "dorian": ["Der Modus ist {t}-Dorisch."], "mixolydian": ["Der Modus ist {t}-Mixolydisch."]},
    "meter_mod": ["im {m}-Takt"], "meter_cl": ["Die Taktart ist {m}.", "Das Stück steht im {m}-Takt."],
    "bpm_mod": ["mit {n} Schlägen pro Minute"], "bpm_cl": ["Das Tempo beträgt {n} Schläge pro Minute."],
    "instr_mod": ["für {i}"], "instr_cl": ["Instrument: {i}.", "Es erklingt auf dem Instrument {i}."],
    "instr": {"Acoustic Grand Piano": "Klavier", "Church Organ": "Kirchenorgel", "Accordion": "Akkordeon",
              "Violin": ["Geige", "Violine"], "String Ensemble 1": "Streichensemble", "Choir Aahs": "Chor",
              "Trumpet": "Trompete", "Clarinet": "Klarinette", "Piccolo": "Piccoloflöte", "Flute": "Flöte",
              "Pan Flute": "Panflöte", "Banjo": "Banjo", "Bagpipe": "Dudelsack"},
    "contour_mod": {"ascending": ["mit steigender Melodie"], "descending": ["mit fallender Melodie"],
                    "arch": ["mit bogenförmiger Melodie"],
                    "valley": ["mit einer Melodie, die erst fällt und dann steigt"]},
    "contour_cl": {"ascending": ["Die Melodie steigt."], "descending": ["Die Melodie fällt."],
                   "arch": ["Die Melodie steigt und fällt wieder."],
                   "valley": ["Die Melodie fällt und steigt wieder."]},
    "register_mod": {"high": ["in hoher Lage"], "mid": ["in mittlerer Lage"], "low": ["in tiefer Lage"]},
    "register_cl": {"high": ["Das Stück liegt hoch."], "mid": ["Das Stück liegt in mittlerer Lage."],
                    "low": ["Das Stück liegt tief."]},
    "dyn_mod": {"p": ["leise gespielt", "im Piano"], "mf": ["mittellaut gespielt", "im Mezzoforte"],
                "f": ["laut gespielt", "im Forte"]},
    "dyn_cl": {"p": ["Es wird leise gespielt."], "mf": ["Es wird mittellaut gespielt."],
               "f": ["Es wird laut gespielt."]},
    "intro": ["Das ist {np}{mods}.", "{np}{mods}.", "Zu hören ist {np}{mods}."],
}

_FRA_TONICS = _tonics(_TONIC_SOLFEGE, "bémol", "dièse")
FRA: Lex = {
    "genre": {"jig": ("f", "gigue"), "reel": ("m", "reel"), "hornpipe": ("m", "hornpipe"), "waltz": ("f", "valse"),
              "march": ("f", "marche"), "polka": ("f", "polka"), "chorale": ("m", "choral")},
    "np": ["{art} {noun} {adj}"], "art": {"m": "un", "f": "une"},
    "tempo": {"fast": ["rapide", {"m": "vif", "f": "vive"}], "moderate": [{"m": "modéré", "f": "modérée"}],
              "slow": [{"m": "lent", "f": "lente"}]},
    "tonic": _FRA_TONICS,
    "key_mod": {"major": ["en {t} majeur"], "minor": ["en {t} mineur"], "dorian": ["en mode dorien sur {t}",
                "en {t} dorien"], "mixolydian": ["en mode mixolydien sur {t}", "en {t} mixolydien"]},
    "key_cl": {"major": ["La tonalité est {t} majeur."], "minor": ["La tonalité est {t} mineur."],
               "dorian": ["Le mode est dorien, sur {t}."], "mixolydian": ["Le mode est mixolydien, sur {t}."]},
    "meter_mod": ["à {m}", "en mesure à {m}"], "meter_cl": ["La mesure est à {m}."],
    "bpm_mod": ["à {n} battements par minute"], "bpm_cl": ["Le tempo est de {n} battements par minute."],
    "instr_mod": ["pour {i}"], "instr_cl": ["Le morceau est joué par : {i}.", "L'instrument : {i}."],
    "instr": {"Acoustic Grand Piano": "piano", "Church Organ": "orgue", "Accordion": "accordéon",
              "Violin": "violon", "String Ensemble 1": "ensemble à cordes", "Choir Aahs": "chœur",
              "Trumpet": "trompette", "Clarinet": "clarinette", "Piccolo": "piccolo", "Flute": "flûte",
              "Pan Flute": "flûte de Pan", "Banjo": "banjo", "Bagpipe": "cornemuse"},
    "contour_mod": {"ascending": ["avec une mélodie ascendante"], "descending": ["avec une mélodie descendante"],
                    "arch": ["avec une mélodie en arche"], "valley": ["avec une mélodie en creux"]},
    "contour_cl": {"ascending": ["La mélodie monte."], "descending": ["La mélodie descend."],
                   "arch": ["La mélodie monte puis redescend."], "valley": ["La mélodie descend puis remonte."]},
    "register_mod": {"high": ["dans un registre aigu"], "mid": ["dans un registre médium"],
                     "low": ["dans un registre grave"]},
    "register_cl": {"high": ["Le morceau se joue dans l'aigu."], "mid": ["Le morceau se joue dans le médium."],
                    "low": ["Le morceau se joue dans le grave."]},
    "dyn_mod": {"p": ["dans une nuance piano", {"m": "joué doucement", "f": "jouée doucement"}],
                "mf": ["dans une nuance mezzo forte"], "f": ["dans une nuance forte", {"m": "joué fort",
                                                                                     "f": "jouée fort"}]},
    "dyn_cl": {"p": ["Le morceau est joué doucement."], "mf": ["Le morceau est joué à volume moyen."],
               "f": ["Le morceau est joué fort."]},
    "intro": ["C'est {np}{mods}.", "{np}{mods}.", "Voici {np}{mods}."],
}

SPA: Lex = {
    "genre": {"jig": ("f", "giga"), "reel": ("m", "reel"), "hornpipe": ("m", "hornpipe"), "waltz": ("m", "vals"),
              "march": ("f", "marcha"), "polka": ("f", "polca"), "chorale": ("m", "coral")},
    "np": ["{art} {noun} {adj}"], "art": {"m": "un", "f": "una"},
    "tempo": {"fast": [{"m": "rápido", "f": "rápida"}, {"m": "vivo", "f": "viva"}],
              "moderate": [{"m": "moderado", "f": "moderada"}], "slow": [{"m": "lento", "f": "lenta"}]},
    "tonic": {**_tonics(_TONIC_SOLFEGE, "bemol", "sostenido"), "D": "re"},
    "key_mod": {"major": ["en {t} mayor"], "minor": ["en {t} menor"], "dorian": ["en modo dórico sobre {t}",
                "en {t} dórico"], "mixolydian": ["en modo mixolidio sobre {t}", "en {t} mixolidio"]},
    "key_cl": {"major": ["La tonalidad es {t} mayor."], "minor": ["La tonalidad es {t} menor."],
               "dorian": ["El modo es dórico, sobre {t}."], "mixolydian": ["El modo es mixolidio, sobre {t}."]},
    "meter_mod": ["en compás de {m}"], "meter_cl": ["El compás es de {m}."],
    "bpm_mod": ["a {n} pulsaciones por minuto"], "bpm_cl": ["El tempo es de {n} pulsaciones por minuto."],
    "instr_mod": ["para {i}"], "instr_cl": ["La pieza se toca con: {i}.", "Instrumento: {i}."],
    "instr": {"Acoustic Grand Piano": "piano", "Church Organ": "órgano", "Accordion": "acordeón",
              "Violin": "violín", "String Ensemble 1": "conjunto de cuerdas", "Choir Aahs": "coro",
              "Trumpet": "trompeta", "Clarinet": "clarinete", "Piccolo": "flautín", "Flute": "flauta",
              "Pan Flute": "flauta de Pan", "Banjo": "banjo", "Bagpipe": "gaita"},
    "contour_mod": {"ascending": ["con una melodía ascendente"], "descending": ["con una melodía descendente"],
                    "arch": ["con una melodía en arco"], "valley": ["con una melodía en valle"]},
    "contour_cl": {"ascending": ["La melodía sube."], "descending": ["La melodía baja."],
                   "arch": ["La melodía sube y luego baja."], "valley": ["La melodía baja y luego sube."]},
    "register_mod": {"high": ["en un registro agudo"], "mid": ["en un registro medio"],
                     "low": ["en un registro grave"]},
    "register_cl": {"high": ["La pieza suena aguda."], "mid": ["La pieza suena en el registro medio."],
                    "low": ["La pieza suena grave."]},
    "dyn_mod": {"p": ["con dinámica piano", {"m": "tocado suavemente", "f": "tocada suavemente"}],
                "mf": ["con dinámica mezzo forte"], "f": ["con dinámica forte", {"m": "tocado con fuerza",
                                                                                 "f": "tocada con fuerza"}]},
    "dyn_cl": {"p": ["Se toca suavemente."], "mf": ["Se toca a volumen medio."], "f": ["Se toca con fuerza."]},
    "intro": ["Es {np}{mods}.", "{np}{mods}.", "Aquí suena {np}{mods}."],
}
