"""Style parameters for the rule-based gesture engine, and a small deterministic text-to-style parser.

StyleParams follows Greta's expressivity parameters (spatial and temporal extent, fluidity, power,
repetition, overall activation) plus posture (head tilt, torso lean, shoulder height), handedness and
the rest pose. ``style_from_text`` maps a free-text prompt ("a very energetic keynote speaker") onto
them by keyword and synonym matching; a learned text encoder replaces it later.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from typing import cast

REST_POSES: tuple[str, ...] = ("sides", "front", "behind")

_UNIT_FIELDS = ("spatial_extent", "temporal_extent", "fluidity", "power", "repetition", "activation",
                "shoulder_raise")
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
    activation: float = 0.5       # overall amount of gesturing (gesture rate)
    head_tilt: float = 0.0        # radians, + = up
    torso_lean: float = 0.0       # radians, + = forward
    shoulder_raise: float = 0.0   # 0..1
    handedness: float = 0.0       # -1 left dominant .. +1 right dominant, 0 both
    rest_pose: str = "sides"      # "sides" (arms down), "front" (hands in front of the belly), "behind"

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

NAMED_STYLES: dict[str, StyleParams] = {
    "neutral": NEUTRAL,
    "excited": StyleParams(spatial_extent=0.85, temporal_extent=0.3, fluidity=0.5, power=0.75, repetition=0.45,
                           activation=0.95, head_tilt=0.06, torso_lean=0.05, shoulder_raise=0.1),
    "calm": StyleParams(spatial_extent=0.3, temporal_extent=0.75, fluidity=0.9, power=0.15, repetition=0.2,
                        activation=0.3, rest_pose="front"),
    "angry": StyleParams(spatial_extent=0.7, temporal_extent=0.25, fluidity=0.1, power=0.95, repetition=0.6,
                         activation=0.8, head_tilt=-0.08, torso_lean=0.1, shoulder_raise=0.3),
    "sad": StyleParams(spatial_extent=0.15, temporal_extent=0.85, fluidity=0.6, power=0.1, repetition=0.2,
                       activation=0.15, head_tilt=-0.3, torso_lean=0.12),
    "nervous": StyleParams(spatial_extent=0.25, temporal_extent=0.25, fluidity=0.2, power=0.35, repetition=0.75,
                           activation=0.75, head_tilt=-0.06, torso_lean=0.04, shoulder_raise=0.5,
                           rest_pose="front"),
    "confident": StyleParams(spatial_extent=0.7, temporal_extent=0.5, fluidity=0.75, power=0.6, repetition=0.3,
                             activation=0.6, head_tilt=0.08, torso_lean=-0.03),
    "bored": StyleParams(spatial_extent=0.15, temporal_extent=0.85, fluidity=0.6, power=0.1, repetition=0.2,
                         activation=0.1, head_tilt=-0.1, torso_lean=-0.05, rest_pose="behind"),
    "tired": StyleParams(spatial_extent=0.12, temporal_extent=0.9, fluidity=0.7, power=0.05, repetition=0.15,
                         activation=0.1, head_tilt=-0.2, torso_lean=0.1),
    "joyful": StyleParams(spatial_extent=0.8, temporal_extent=0.4, fluidity=0.8, power=0.55, repetition=0.4,
                          activation=0.85, head_tilt=0.12, torso_lean=0.02),
    "shy": StyleParams(spatial_extent=0.12, temporal_extent=0.6, fluidity=0.5, power=0.15, repetition=0.25,
                       activation=0.25, head_tilt=-0.22, torso_lean=0.06, shoulder_raise=0.35, rest_pose="front"),
    "strict": StyleParams(spatial_extent=0.5, temporal_extent=0.35, fluidity=0.2, power=0.8, repetition=0.5,
                          activation=0.5, head_tilt=0.05, rest_pose="behind"),
}

# Words (and short phrases) that select a named style.
_STYLE_WORDS: dict[str, tuple[str, ...]] = {
    "neutral": ("neutral", "normal", "default", "plain", "ordinary", "standard"),
    "excited": ("excited", "exciting", "excitement", "energetic", "energy", "enthusiastic", "enthusiasm",
                "lively", "animated", "hyped", "hyper", "passionate", "dynamic", "eager", "thrilled"),
    "calm": ("calm", "calmly", "relaxed", "peaceful", "serene", "gentle", "gently", "soothing", "composed",
             "tranquil", "quiet", "mellow", "soft", "softly"),
    "angry": ("angry", "anger", "furious", "mad", "rage", "enraged", "aggressive", "annoyed", "irritated",
              "frustrated", "hostile", "fierce"),
    "sad": ("sad", "sadly", "sadness", "unhappy", "depressed", "melancholic", "melancholy", "gloomy", "grieving",
            "mournful", "down", "upset", "sorrowful", "heartbroken"),
    "nervous": ("nervous", "anxious", "anxiety", "worried", "fidgety", "jittery", "tense", "stressed", "uneasy",
                "insecure", "restless"),
    "confident": ("confident", "confidence", "assertive", "assured", "self-assured", "bold", "authoritative",
                  "proud", "powerful", "charismatic", "persuasive", "commanding"),
    "bored": ("bored", "boring", "uninterested", "disinterested", "indifferent", "apathetic", "monotone",
              "dull", "unenthusiastic"),
    "tired": ("tired", "exhausted", "sleepy", "weary", "fatigued", "drowsy", "lethargic", "drained"),
    "joyful": ("joyful", "joy", "happy", "happily", "cheerful", "glad", "delighted", "playful", "upbeat",
               "bubbly", "friendly", "warm", "smiling"),
    "shy": ("shy", "timid", "bashful", "reserved", "introverted", "hesitant", "awkward", "meek", "sheepish"),
    "strict": ("strict", "stern", "serious", "formal", "rigid", "severe", "disciplined", "militant", "cold"),
}

# Modifiers change a few parameters (deviations from neutral are given as absolute values).
_MODIFIERS: dict[tuple[str, ...], dict[str, float | str]] = {
    ("slow", "slowly", "sluggish", "leisurely"): {"temporal_extent": 0.85, "activation": 0.3, "power": 0.25},
    ("fast", "quick", "quickly", "rapid", "rapidly", "brisk", "snappy"): {"temporal_extent": 0.2,
                                                                          "activation": 0.75},
    ("big", "large", "broad", "wide", "expansive", "expressive", "grand", "sweeping", "theatrical",
     "dramatic"): {"spatial_extent": 0.9, "activation": 0.7},
    ("small", "subtle", "restrained", "minimal", "tiny", "contained", "understated", "modest"):
        {"spatial_extent": 0.15, "activation": 0.3},
    ("smooth", "smoothly", "fluid", "flowing", "graceful", "elegant", "soft-spoken"): {"fluidity": 0.9},
    ("jerky", "choppy", "abrupt", "stiff", "robotic", "mechanical"): {"fluidity": 0.1},
    ("forceful", "emphatic", "strong", "punchy", "intense", "sharp"): {"power": 0.9},
    ("weak", "limp", "feeble"): {"power": 0.1},
    ("repetitive", "rhythmic", "repeating"): {"repetition": 0.8},
    ("still", "motionless", "static"): {"activation": 0.05, "spatial_extent": 0.2},
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
    ("slightly", "a bit", "a little", "somewhat", "mildly", "kind of", "kinda", "sort of", "a touch", "barely",
     "little", "bit", "rather"): 0.5,
}


def _phrase_table() -> list[tuple[tuple[str, ...], str, object]]:
    """(tokens, kind, payload) sorted longest first, so multi-word phrases win."""
    table: list[tuple[tuple[str, ...], str, object]] = []
    for style, words in _STYLE_WORDS.items():
        for w in words:
            table.append((tuple(_tokens(w)), "style", style))
    for words, mod in _MODIFIERS.items():
        for w in words:
            table.append((tuple(_tokens(w)), "modifier", (w, mod)))
    for words, scale in _INTENSITY.items():
        for w in words:
            table.append((tuple(_tokens(w)), "intensity", scale))
    table.sort(key=lambda e: -len(e[0]))
    return table


def _tokens(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower().replace("-", " "))


_PHRASES = _phrase_table()
_SUFFIXES = ("ly", "ness", "ing", "ed", "es", "s")


def _match_single(token: str) -> tuple[str, object] | None:
    for toks, kind, payload in _PHRASES:
        if len(toks) == 1 and toks[0] == token:
            return kind, payload
    for suf in _SUFFIXES:  # crude stemming: "excitedly" -> "excited", "smiles" -> "smile"?
        if token.endswith(suf) and len(token) - len(suf) >= 3:
            stem = token[: -len(suf)]
            for toks, kind, payload in _PHRASES:
                if len(toks) == 1 and toks[0] == stem and kind != "intensity":
                    return kind, payload
    return None


def style_from_text(prompt: str) -> tuple[StyleParams, str]:
    """Parse a style prompt into StyleParams and a short explanation of what matched.

    Empty or whitespace-only prompts give the neutral style. Unrecognised prompts give neutral with an
    explanation saying nothing matched. Intensity words ("very", "slightly") scale the next match's
    deviation from neutral; several matches blend (per parameter, the mean of their deviations).
    """
    text = (prompt or "").strip()
    if not text:
        return NEUTRAL, "empty prompt: neutral style"
    toks = _tokens(text)
    matches: list[tuple[str, dict[str, float | str], float]] = []  # (label, values, intensity)
    intensity = 1.0
    pending_intensity = 0  # tokens left during which the intensity applies
    i = 0
    while i < len(toks):
        hit = None
        for phrase, kind, payload in _PHRASES:
            n = len(phrase)
            if n > 1 and tuple(toks[i:i + n]) == phrase:
                hit = (n, kind, payload)
                break
        if hit is None:
            single = _match_single(toks[i])
            if single is not None:
                hit = (1, single[0], single[1])
        if hit is None:
            i += 1
            if pending_intensity:
                pending_intensity -= 1
                if not pending_intensity:
                    intensity = 1.0
            continue
        n, kind, payload = hit
        if kind == "intensity":
            intensity = float(payload)  # type: ignore[arg-type]
            pending_intensity = 2
        else:
            if kind == "style":
                name = str(payload)
                values = {f.name: getattr(NAMED_STYLES[name], f.name) for f in fields(StyleParams)}
                label = f"{name} ('{' '.join(toks[i:i + n])}')"
            else:
                word, mod = cast("tuple[str, dict[str, float]]", payload)
                values = dict(mod)
                label = f"'{word}'"
            if intensity != 1.0:
                label = f"{'strong' if intensity > 1 else 'mild'} {label}"
            matches.append((label, values, intensity))
            intensity, pending_intensity = 1.0, 0
        i += n
    if not matches:
        return NEUTRAL, f"nothing matched in {text!r}: neutral style"
    return _blend(matches), "matched " + ", ".join(m[0] for m in matches)


def _blend(matches: list[tuple[str, dict[str, float | str], float]]) -> StyleParams:
    out: dict[str, float | str] = {}
    for name in _FLOAT_FIELDS:
        base = float(getattr(NEUTRAL, name))
        devs = [(float(v[name]) - base) * k for _, v, k in matches if name in v]
        out[name] = round(base + (sum(devs) / len(devs) if devs else 0.0), 6)
    rest = [v["rest_pose"] for _, v, _k in matches if "rest_pose" in v and v["rest_pose"] != NEUTRAL.rest_pose]
    out["rest_pose"] = str(rest[-1]) if rest else NEUTRAL.rest_pose
    return StyleParams(**out).clamped()  # type: ignore[arg-type]
