"""The style catalogue: size, stable ids, descriptions and held-out subsets, and the parser's mapping."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

from gestura.inference.style import PART_NAMES, PartStyles, StyleParams, match_styles
from gestura.inference.style_catalog import (
    HELD_OUT_PER_STYLE,
    STYLE_CATALOG,
    STYLE_NAMES,
    part_style_ids,
    part_styles,
    style_by_id,
    style_by_name,
)

# The corpus stores these ids: entries may be appended, never reordered, renamed or removed.
STABLE_IDS = {
    0: "neutral", 1: "excited_keynote_speaker", 2: "calm_teacher", 3: "angry", 4: "sad", 5: "nervous",
    6: "confident", 7: "bored", 8: "tired_elder", 9: "joyful_storyteller", 10: "strict", 11: "shy",
    12: "sarcastic", 13: "proud", 14: "anxious", 15: "relaxed", 16: "formal_presenter", 17: "passionate_activist",
    18: "thoughtful_professor", 19: "playful_child", 20: "sleepy", 21: "frustrated", 22: "surprised", 23: "humble",
    24: "commanding_leader",
}


def test_size_and_stable_ids():
    assert len(STYLE_CATALOG) >= 24
    assert [e.id for e in STYLE_CATALOG] == list(range(len(STYLE_CATALOG)))
    for i, name in STABLE_IDS.items():
        assert STYLE_CATALOG[i].name == name
        assert style_by_id(i).name == name
    assert len(set(STYLE_NAMES)) == len(STYLE_NAMES)


def test_descriptions_and_held_out_subsets():
    seen: set[str] = set()
    for e in STYLE_CATALOG:
        assert len(e.descriptions) >= 10, e.name
        assert len(set(e.descriptions)) == len(e.descriptions), e.name
        assert len(e.held_out) == HELD_OUT_PER_STYLE == 3
        assert set(e.held_out).isdisjoint(e.train_descriptions)
        assert set(e.held_out) | set(e.train_descriptions) == set(e.descriptions)
        assert e.held_out == e.descriptions[-3:]  # fixed: the last three
        assert not seen.intersection(d.lower() for d in e.descriptions), e.name  # no sharing between styles
        seen.update(d.lower() for d in e.descriptions)


def test_params_valid_and_distinct():
    vecs = []
    for e in STYLE_CATALOG:
        assert isinstance(e.params, StyleParams) and e.params == e.params.clamped(), e.name
        p = e.params
        vecs.append([p.spatial_extent, p.temporal_extent, p.fluidity, p.power, p.repetition, p.activation,
                     p.gesture_rate, p.head_tilt * 2, p.torso_lean * 2, p.shoulder_raise, p.handedness / 2,
                     {"sides": 0.0, "front": 0.5, "behind": 1.0}[p.rest_pose]])
    v = np.array(vecs)
    d = np.linalg.norm(v[:, None] - v[None], axis=-1) + np.eye(len(v)) * 9
    assert d.min() > 0.3, [(STYLE_NAMES[i], STYLE_NAMES[j]) for i, j in zip(*np.nonzero(d < 0.3), strict=True)]
    # the range of motion-driving parameters is used
    for col in range(7):
        assert np.ptp(v[:, col]) > 0.6


def test_lookup_by_name_label_and_alias():
    assert style_by_name("calm teacher").name == "calm_teacher"
    assert style_by_name("Calm_Teacher").name == "calm_teacher"
    assert style_by_name("excited").name == "excited_keynote_speaker"
    assert style_by_name("tired").name == "tired_elder"
    with pytest.raises(KeyError):
        style_by_name("grumpy cat")
    with pytest.raises(KeyError):
        style_by_id(len(STYLE_CATALOG))


def test_every_name_and_in_vocabulary_description_maps_back():
    for e in STYLE_CATALOG:
        for text in (e.name, e.label, *e.train_descriptions):
            ranked = match_styles(text)
            assert ranked and ranked[0][0].name == e.name, (text, [(x.name, s) for x, s in ranked[:3]])


def test_held_out_descriptions_are_not_in_the_parser_vocabulary():
    from gestura.inference import style as S

    v = S._vocab()
    for e, weights in zip(v.entries, v.weights, strict=True):
        train_forms = set().union(*(S._content_forms(d) for d in e.train_descriptions))
        strong = S._content_forms(" ".join((e.name.replace("_", " "), e.label, *e.synonyms)))
        assert set(weights) == train_forms | strong


def test_held_out_hit_rate_is_reported():
    hits = sum(bool(match_styles(d)) and match_styles(d)[0][0].id == e.id for e in STYLE_CATALOG for d in e.held_out)
    total = sum(len(e.held_out) for e in STYLE_CATALOG)
    print(f"held-out top-1: {hits}/{total}")
    assert hits > 0  # keyword matching generalises a little; learned encoders are measured on these


def test_part_style_helpers():
    ids = part_style_ids("calm_teacher", arms="angry", head=4)
    assert ids["left_arm"] == ids["right_hand"] == style_by_name("angry").id
    assert ids["head"] == 4 and ids["torso"] == ids["lower_body"] == 2
    assert list(ids) == list(PART_NAMES)
    ps = part_styles("calm_teacher", arms="angry", head=4)
    assert isinstance(ps, PartStyles)
    for part, i in ids.items():
        assert ps.part(part) == STYLE_CATALOG[i].params
    with pytest.raises(KeyError):
        part_style_ids("neutral", tail="angry")


def test_entries_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        STYLE_CATALOG[0].name = "x"  # type: ignore[misc]
    assert all(a.name != b.name for a, b in itertools.combinations(STYLE_CATALOG, 2))
