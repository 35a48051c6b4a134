"""Style parameters for the rule-based gesture engine, per-body-part styles, and the deterministic
text-to-style parser.

StyleParams follows Greta's expressivity parameters (spatial and temporal extent, fluidity, power,
repetition, overall activation) plus gesture rate, posture (head tilt, torso lean, shoulder height),
handedness and the rest pose. PartStyles gives each body part (skeleton.BODY_PARTS) its own StyleParams.

``style_from_text`` maps a free-text prompt ("a patient teacher explaining slowly") onto the named styles
of ``style_catalog.STYLE_CATALOG``: keyword weights come from each style's name, synonyms and its
in-vocabulary descriptions (never the held-out ones), lemmatised with lemminflect, weighted by how
specific a word is to one style. Modifier words ("slow", "left-handed", "hands behind the back") and
intensity words ("very", "slightly") that the chosen style does not already explain adjust it.
``parse_style_prompt`` adds per-part control: "calm teacher; arms: angry; head: sad".
"""

from __future__ import annotations

import importlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from functools import lru_cache
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from .style_catalog import StyleEntry

REST_POSES: tuple[str, ...] = ("sides", "front", "behind")

_UNIT_FIELDS = ("spatial_extent", "temporal_extent", "fluidity", "power", "repetition", "activation",
                "shoulder_raise", "gesture_rate")
_FLOAT_FIELDS = _UNIT_FIELDS + ("head_tilt", "torso_lean", "handedness")
_MAX_TILT = 0.5  # radians; head tilt and torso lean are clamped to +-this


@dataclass(frozen=True)
class StyleParams:
    """Greta-style expressivity plus posture. All 0..1 unless stated otherwise."""

    spatial_extent: float = 0.5   # how far from the body gestures reach
    temporal_extent: float = 0.5  # how long strokes take
    fluidity: float = 0.5         # smooth (1) vs. jerky (0) transitions
    power: float = 0.5            # stroke acceleration / sharpness
    repetition: float = 0.3       # tendency to repeat beats
    activation: float = 0.5       # overall amount of movement (head, torso, idle motion, two-handedness)
    head_tilt: float = 0.0        # radians, + = up
    torso_lean: float = 0.0       # radians, + = forward
    shoulder_raise: float = 0.0   # 0..1
    handedness: float = 0.0       # -1 left dominant .. +1 right dominant, 0 both
    rest_pose: str = "sides"      # "sides" (arms down), "front" (hands in front of the belly), "behind"
    gesture_rate: float = 0.5     # strokes per second of speech: 0 about 0.25/s .. 1 about 2/s

    def __post_init__(self) -> None:
        if self.rest_pose not in REST_POSES:
            raise ValueError(f"rest_pose must be one of {REST_POSES}, got {self.rest_pose!r}")

    def clamped(self) -> StyleParams:
        """A copy with every parameter inside its valid range."""
        vals = {}
        for name in _UNIT_FIELDS:
            vals[name] = min(1.0, max(0.0, float(getattr(self, name))))
        vals["head_tilt"] = min(_MAX_TILT, max(-_MAX_TILT, float(self.head_tilt)))
        vals["torso_lean"] = min(_MAX_TILT, max(-_MAX_TILT, float(self.torso_lean)))
        vals["handedness"] = min(1.0, max(-1.0, float(self.handedness)))
        return replace(self, **vals)  # type: ignore[arg-type]  # the float fields only


NEUTRAL = StyleParams()

# ----------------------------------------------------------------------------------------------------
# Per-body-part styles

# The parts of skeleton.BODY_PARTS (same names, same order).
PART_NAMES: tuple[str, ...] = ("head", "torso", "left_arm", "right_arm", "left_hand", "right_hand", "lower_body")
PART_GROUPS: dict[str, tuple[str, ...]] = {
    "arms": ("left_arm", "right_arm", "left_hand", "right_hand"),
    "hands": ("left_hand", "right_hand"),
    "left": ("left_arm", "left_hand"),
    "right": ("right_arm", "right_hand"),
    "upper_body": ("head", "torso", "left_arm", "right_arm", "left_hand", "right_hand"),
    "body": ("torso", "lower_body"),
    "legs": ("lower_body",),
    "all": PART_NAMES,
}


@dataclass(frozen=True)
class PartStyles:
    """A style per body part; a part left as None inherits ``default``.

    What each part's style drives in the rule engine: head = nods, shakes, glances, head posture; torso =
    lean, twist, breathing, shoulder height (collars); arms = the gesture plan (timing, rate, extent, speed,
    holds, handedness of that arm's gestures, rest pose); hands = finger tension, spread, follow-through
    and fidgeting on top of the shapes the arm's gestures ask for; lower_body = weight shift and sway.
    """

    default: StyleParams = NEUTRAL
    head: StyleParams | None = None
    torso: StyleParams | None = None
    left_arm: StyleParams | None = None
    right_arm: StyleParams | None = None
    left_hand: StyleParams | None = None
    right_hand: StyleParams | None = None
    lower_body: StyleParams | None = None

    @classmethod
    def uniform(cls, style: StyleParams) -> PartStyles:
        return cls(default=style)

    @classmethod
    def coerce(cls, style: StyleParams | PartStyles) -> PartStyles:
        return style if isinstance(style, PartStyles) else cls(default=style)

    def part(self, name: str) -> StyleParams:
        """The style of one body part (PART_NAMES)."""
        if name not in PART_NAMES:
            raise KeyError(f"Unknown body part {name!r}; parts: {', '.join(PART_NAMES)}")
        value = getattr(self, name)
        return self.default if value is None else value

    def resolved(self) -> dict[str, StyleParams]:
        return {p: self.part(p) for p in PART_NAMES}

    def distinct(self) -> tuple[StyleParams, ...]:
        """The different styles in use, in PART_NAMES order of first use."""
        out: list[StyleParams] = []
        for p in PART_NAMES:
            s = self.part(p)
            if s not in out:
                out.append(s)
        return tuple(out)

    def with_parts(self, parts: str | tuple[str, ...], style: StyleParams) -> PartStyles:
        """A copy with ``style`` on the given parts or groups (PART_GROUPS), e.g. with_parts("arms", s)."""
        names: list[str] = []
        for key in (parts,) if isinstance(parts, str) else parts:
            if key in PART_GROUPS:
                names.extend(PART_GROUPS[key])
            elif key in PART_NAMES:
                names.append(key)
            else:
                raise KeyError(f"Unknown body part {key!r}; parts: {', '.join(PART_NAMES)}; "
                               f"groups: {', '.join(PART_GROUPS)}")
        return replace(self, **dict.fromkeys(names, style))

    @property
    def is_uniform(self) -> bool:
        return len(self.distinct()) == 1


def __getattr__(name: str) -> dict[str, StyleParams]:
    # NAMED_STYLES (name -> params of every catalogue entry) is built on first use: the catalogue imports
    # this module, so it cannot be imported at the top.
    if name == "NAMED_STYLES":
        from .style_catalog import STYLE_CATALOG

        return {e.name: e.params for e in STYLE_CATALOG}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ----------------------------------------------------------------------------------------------------
# Text parser

# Modifiers change a few parameters (deviations from neutral are given as absolute values).
_MODIFIERS: dict[tuple[str, ...], dict[str, float | str]] = {
    ("slow", "slowly", "sluggish", "leisurely"): {"temporal_extent": 0.85, "activation": 0.3, "power": 0.25,
                                                  "gesture_rate": 0.3},
    ("fast", "quick", "quickly", "rapid", "rapidly", "brisk", "snappy"): {"temporal_extent": 0.2,
                                                                          "activation": 0.75, "gesture_rate": 0.75},
    ("big", "large", "broad", "wide", "expansive", "expressive", "grand", "sweeping", "theatrical",
     "dramatic"): {"spatial_extent": 0.9, "activation": 0.7},
    ("small", "subtle", "restrained", "minimal", "tiny", "contained", "understated", "modest"):
        {"spatial_extent": 0.15, "activation": 0.3},
    ("many gestures", "lots of gestures", "gesticulating", "gesticulates"): {"gesture_rate": 0.9},
    ("few gestures", "rarely gestures", "hardly gestures"): {"gesture_rate": 0.12},
    ("smooth", "smoothly", "fluid", "flowing", "graceful", "elegant", "soft-spoken"): {"fluidity": 0.9},
    ("jerky", "choppy", "abrupt", "stiff", "robotic", "mechanical"): {"fluidity": 0.1},
    ("forceful", "emphatic", "strong", "punchy", "intense", "sharp"): {"power": 0.9},
    ("weak", "limp", "feeble"): {"power": 0.1},
    ("repetitive", "rhythmic", "repeating"): {"repetition": 0.8},
    ("still", "motionless", "static"): {"activation": 0.05, "spatial_extent": 0.2, "gesture_rate": 0.05},
    ("leaning forward", "lean forward", "leans forward", "hunched", "slouching", "slouched", "slumped"):
        {"torso_lean": 0.2},
    ("leaning back", "lean back", "leans back", "upright", "straight"): {"torso_lean": -0.08},
    ("looking down", "looks down", "head down", "downcast"): {"head_tilt": -0.3},
    ("looking up", "looks up", "head up", "chin up"): {"head_tilt": 0.2},
    ("shrugging", "raised shoulders", "shoulders raised", "tense shoulders"): {"shoulder_raise": 0.6},
    ("left-handed", "left handed", "lefty", "left hand"): {"handedness": -0.8},
    ("right-handed", "right handed", "right hand"): {"handedness": 0.8},
    ("hands behind", "behind the back", "behind his back", "behind her back", "behind their back"):
        {"rest_pose": "behind"},
    ("hands in front", "hands clasped", "clasped hands", "folded hands"): {"rest_pose": "front"},
    ("arms down", "hands down", "arms at the sides", "hands at the sides"): {"rest_pose": "sides"},
}

_INTENSITY: dict[tuple[str, ...], float] = {
    ("very", "extremely", "really", "super", "highly", "so", "incredibly", "totally", "hugely", "utterly",
     "quite", "deeply", "overly"): 1.6,
    ("slightly", "a bit", "a little", "somewhat", "mildly", "kind of", "kinda", "sort of", "a touch",
     "rather"): 0.5,
}


_STOPWORDS = frozenset("""
a an the and or nor but so yet with without to of in on at for by from about into onto over under as than
is are was were be being been am do does did has have had get gets got it its it's this that these those
who whom whose which what while when where how why there here then just also too very all any each every
he she they them their theirs his her hers him himself herself themselves themself i me my myself you your
yours we our ours us one ones someone somebody something person people speaker speakers speak speaks
speaking spoke talk talks talking talker say says said voice way s t d ll re ve m
""".split())

_INTENSITY_PHRASES: list[tuple[tuple[str, ...], float]] = sorted(
    ((tuple(w.split()), k) for words, k in _INTENSITY.items() for w in words), key=lambda e: -len(e[0]))
_MODIFIER_PHRASES: list[tuple[tuple[str, ...], str, dict[str, float | str]]] = sorted(
    ((tuple(_t) , w, mod) for words, mod in _MODIFIERS.items() for w in words
     for _t in [re.findall(r"[a-z]+", w.lower().replace("-", " "))]), key=lambda e: -len(e[0]))
_MODIFIER_WORDS = frozenset(t for toks, _w, _m in _MODIFIER_PHRASES for t in toks)


def _tokens(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower().replace("-", " "))


@lru_cache(maxsize=1)
def _lemmatizer() -> Callable[[str], dict[str, tuple[str, ...]]] | None:
    try:
        module = importlib.import_module("lemminflect")
    except ImportError:  # pragma: no cover - lemminflect is a runtime requirement; degrade to suffix rules
        return None
    return cast("Callable[[str], dict[str, tuple[str, ...]]]", module.getAllLemmas)


_SUFFIXES = ("ing", "ed", "es", "s", "er", "est")


@lru_cache(maxsize=65536)
def lemma_forms(word: str) -> tuple[str, ...]:
    """The word (lower case) and its English lemmas ("pointing" -> point, "ideas" -> idea, "bigger" ->
    big); adverbs also give their adjective ("calmly" -> calm, "happily" -> happy). Unknown words (and
    words of other languages) give just themselves."""
    w = word.lower().strip()
    forms = [w]
    lem = _lemmatizer()
    if lem is not None:
        for lemmas in lem(w).values():
            forms.extend(x.lower() for x in lemmas)
    else:
        forms.extend(w[: -len(s)] for s in _SUFFIXES if w.endswith(s) and len(w) - len(s) >= 3)
    if w.endswith("ily") and len(w) > 5:
        forms.append(w[:-3] + "y")
    elif w.endswith("ly") and len(w) > 5:
        forms.append(w[:-2])
    return tuple(dict.fromkeys(forms))


@lru_cache(maxsize=65536)
def english_word_known(word: str) -> bool:
    """True when lemminflect knows the (lower-case) word as English (without lemminflect: any ASCII word)."""
    w = word.lower().strip()
    lem = _lemmatizer()
    if lem is None:  # pragma: no cover
        return w.isascii() and w.isalpha()
    return bool(lem(w))


@dataclass(frozen=True)
class _Vocab:
    entries: tuple[StyleEntry, ...]
    weights: tuple[dict[str, float], ...]  # per style: word form -> weight
    strong: tuple[frozenset[str], ...]  # per style: forms of its name, label and synonyms
    strong_any: frozenset[str]


def _content_forms(text: str) -> set[str]:
    out: set[str] = set()
    for tok in _tokens(text):
        if tok not in _STOPWORDS and len(tok) > 1:
            out.update(lemma_forms(tok))
    return out - _STOPWORDS


@lru_cache(maxsize=1)
def _vocab() -> _Vocab:
    from .style_catalog import STYLE_CATALOG

    strong: list[set[str]] = []
    weak: list[set[str]] = []
    for e in STYLE_CATALOG:
        s = _content_forms(" ".join((e.name.replace("_", " "), e.label, *e.synonyms)))
        strong.append(s)
        # Held-out descriptions never enter the vocabulary.
        weak.append(set().union(*(_content_forms(d) for d in e.train_descriptions)) - s)
    n = len(STYLE_CATALOG)
    df: dict[str, int] = {}
    for s, w in zip(strong, weak, strict=True):
        for f in s | w:
            df[f] = df.get(f, 0) + 1
    weights = tuple({**{f: math.log(1.0 + n / df[f]) for f in w}, **{f: 3.0 * math.log(1.0 + n / df[f]) for f in s}}
                    for s, w in zip(strong, weak, strict=True))
    return _Vocab(STYLE_CATALOG, weights, tuple(frozenset(s) for s in strong), frozenset().union(*strong))


def _token_scores(toks: list[str]) -> tuple[list[tuple[str, ...]], list[list[float]]]:
    """Forms of each token, and (per style) each token's weight (0 where it does not match)."""
    v = _vocab()
    forms = [() if (t in _STOPWORDS or len(t) < 2) else lemma_forms(t) for t in toks]
    scores = [[max((w.get(f, 0.0) for f in fs), default=0.0) for fs in forms] for w in v.weights]
    return forms, scores


def _is_evidence(forms: tuple[str, ...], v: _Vocab) -> bool:
    """A matched token counts as evidence for a style unless it is only a modifier word ("slow", "big")."""
    return not (forms and forms[0] in _MODIFIER_WORDS and not (set(forms) & v.strong_any))


def match_styles(prompt: str) -> list[tuple[StyleEntry, float]]:
    """Catalogue styles ranked by how well the prompt matches their vocabulary (best first; only styles
    with some evidence beyond modifier words). Ties go to the lower id."""
    v = _vocab()
    toks = _tokens(prompt or "")
    forms, scores = _token_scores(toks)
    ranked = []
    for i, (e, sc) in enumerate(zip(v.entries, scores, strict=True)):
        evidence = sum(x for x, f in zip(sc, forms, strict=True) if x > 0 and _is_evidence(f, v))
        if evidence > 0:
            ranked.append((-sum(sc), i, e))
    ranked.sort(key=lambda r: (r[0], r[1]))
    return [(e, -s) for s, _i, e in ranked]


def style_from_text(prompt: str) -> tuple[StyleParams, str]:
    """Parse a style prompt into StyleParams and a short explanation of what matched.

    The best-matching catalogue style is the base; other styles named by their strong keywords (name or
    synonym) blend in (per parameter, the mean of their deviations from neutral); modifier phrases the
    chosen styles do not already explain adjust the result; intensity words ("very", "slightly") scale the
    deviation of the next match. A prompt that is exactly a style's vocabulary gives that style's params.
    Empty prompts give neutral; unrecognised ones give neutral with an explanation saying nothing matched.
    """
    text = (prompt or "").strip()
    if not text:
        return NEUTRAL, "empty prompt: neutral style"
    v = _vocab()
    toks = _tokens(text)
    forms, scores = _token_scores(toks)
    ranked = match_styles(text)
    consumed: set[int] = set()
    # (position, label, values, is_style)
    found: list[tuple[int, str, dict[str, float | str], bool]] = []
    chosen: list[int] = []

    def take(style_idx: int) -> None:
        hits = [i for i, x in enumerate(scores[style_idx]) if x > 0 and i not in consumed]
        consumed.update(hits)
        chosen.append(style_idx)
        e = v.entries[style_idx]
        ev = [i for i in hits if _is_evidence(forms[i], v)] or hits
        words = ", ".join(f"'{toks[i]}'" for i in hits)
        found.append((min(ev), f"{e.name} ({words})", {f.name: getattr(e.params, f.name)
                                                         for f in fields(StyleParams)}, True))

    if ranked:
        take(ranked[0][0].id)
        # Further styles only through their strong keywords, in text order.
        for i, fs in enumerate(forms):
            if i in consumed or not fs:
                continue
            cands = [k for k in range(len(v.entries)) if k not in chosen and set(fs) & v.strong[k]]
            if cands:
                take(max(cands, key=lambda k: (scores[k][i], -k)))
    # Modifier phrases on tokens no chosen style explains (longest first).
    used = set(consumed)
    for phrase, word, mod in _MODIFIER_PHRASES:
        n = len(phrase)
        for i in range(len(toks) - n + 1):
            if tuple(toks[i:i + n]) == phrase and not used.intersection(range(i, i + n)):
                used.update(range(i, i + n))
                found.append((i, f"'{word}'", dict(mod), False))
    if not found:
        return NEUTRAL, f"nothing matched in {text!r}: neutral style"
    # Intensity: a word up to two tokens before a match scales it.
    intens: dict[int, float] = {}
    for phrase, k in _INTENSITY_PHRASES:
        n = len(phrase)
        for i in range(len(toks) - n + 1):
            if tuple(toks[i:i + n]) == phrase and i + n - 1 not in intens:
                intens[i + n - 1] = k
    found.sort(key=lambda f: f[0])
    matches: list[tuple[str, dict[str, float | str], float, bool]] = []
    for pos, label, values, is_style in found:
        k = next((intens.pop(j) for j in (pos - 1, pos - 2) if j in intens), 1.0)
        if k != 1.0:
            label = f"{'strong' if k > 1 else 'mild'} {label}"
        matches.append((label, values, k, is_style))
    explanation = "matched " + ", ".join(m[0] for m in matches)
    if len(matches) == 1 and matches[0][3] and matches[0][2] == 1.0:
        return v.entries[chosen[0]].params, explanation
    return _blend(matches), explanation


def _blend(matches: list[tuple[str, dict[str, float | str], float, bool]]) -> StyleParams:
    """Styles: mean of their deviations from neutral (times intensity). Modifiers then pull the result
    towards their values (intensity scales the pull)."""
    out: dict[str, float | str] = {}
    styles = [(v, k) for _, v, k, is_style in matches if is_style]
    mods = [(v, k) for _, v, k, is_style in matches if not is_style]
    for name in _FLOAT_FIELDS:
        base = float(getattr(NEUTRAL, name))
        devs = [(float(v[name]) - base) * k for v, k in styles if name in v]
        value = base + (sum(devs) / len(devs) if devs else 0.0)
        targets = [(float(v[name]), k) for v, k in mods if name in v]
        if targets:
            target = sum(t for t, _ in targets) / len(targets)
            k = sum(k for _, k in targets) / len(targets)
            value = value + (target - value) * k
        out[name] = round(value, 6)
    rest = [v["rest_pose"] for _, v, _k, is_style in matches
            if "rest_pose" in v and (not is_style or v["rest_pose"] != NEUTRAL.rest_pose)]
    out["rest_pose"] = str(rest[-1]) if rest else NEUTRAL.rest_pose
    return StyleParams(**out).clamped()  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------------
# Per-part prompts

_PART_WORDS: dict[str, tuple[str, ...]] = {
    "arms": ("arms", "arm", "gestures", "gesture"),
    "hands": ("hands", "hand", "fingers"),
    "left": ("left", "left side"),
    "right": ("right", "right side"),
    "left_arm": ("left arm",),
    "right_arm": ("right arm",),
    "left_hand": ("left hand",),
    "right_hand": ("right hand",),
    "head": ("head", "face", "neck"),
    "torso": ("torso", "chest", "spine", "shoulders", "posture"),
    "lower_body": ("lower body", "legs", "hips", "feet", "stance"),
    "upper_body": ("upper body",),
    "body": ("body",),
    "all": ("all", "everything", "default", "overall", "rest"),
}
_PART_KEY = {w: key for key, words in _PART_WORDS.items() for w in words}


def split_part_prompt(prompt: str) -> tuple[str, list[tuple[str, str]]]:
    """The sections of a per-part prompt: (the default text, [(part or group key, text), ...] in order).

    Sections are separated by ';' or new lines; "part: text" names a part or group of PART_GROUPS /
    PART_NAMES through its words ("arms", "left hand", "head", "legs", ...); sections without a known part
    word are joined with "; " into the default text. A part section's text may be empty ("arms:")."""
    sections = [s.strip() for s in re.split(r"[;\n]+", prompt or "") if s.strip()]
    default_text: list[str] = []
    parts: list[tuple[str, str]] = []
    for sec in sections:
        m = re.match(r"^([a-z][a-z _-]*?)\s*:\s*(.*)$", sec, re.IGNORECASE)
        key = _PART_KEY.get(re.sub(r"[\s_-]+", " ", m.group(1).lower()).strip()) if m else None
        if m is None or key is None:
            default_text.append(sec)
        else:
            parts.append((key, m.group(2).strip()))
    return "; ".join(default_text), parts


def part_key_members(key: str) -> tuple[str, ...]:
    """The body parts (PART_NAMES) a part or group key of split_part_prompt covers."""
    if key in PART_GROUPS:
        return PART_GROUPS[key]
    if key in PART_NAMES:
        return (key,)
    raise KeyError(f"Unknown body part {key!r}; parts: {', '.join(PART_NAMES)}; groups: {', '.join(PART_GROUPS)}")


def parse_style_prompt(prompt: str) -> tuple[StyleParams | PartStyles, str]:
    """Like style_from_text, with per-part sections separated by ';' or new lines:
    "calm teacher; arms: angry; head: sad". A section "part: text" styles that part or group (arms,
    hands, left/right arm or hand, head, torso, lower body, upper body, ...); sections without a part set
    the default of every other part. Without any part section the result is a plain StyleParams."""
    default_text, parts = split_part_prompt(prompt)
    if not parts:
        return style_from_text(prompt)
    base, why = style_from_text(default_text)
    result = PartStyles(default=base)
    notes = [f"default: {why}"]
    for key, text in parts:
        style, pwhy = style_from_text(text)
        result = result.with_parts(key, style)
        notes.append(f"{key}: {pwhy}")
    return result, "; ".join(notes)
