"""Style parameters, per-part styles and the catalogue-driven text-to-style parser."""

from __future__ import annotations

import dataclasses

import pytest

from gestura.inference.skeleton import BODY_PARTS
from gestura.inference.style import (
    NAMED_STYLES,
    NEUTRAL,
    PART_NAMES,
    REST_POSES,
    PartStyles,
    StyleParams,
    lemma_forms,
    parse_style_prompt,
    style_from_text,
)
from gestura.inference.style_catalog import style_by_name

REQUIRED = ("neutral", "excited_keynote_speaker", "calm_teacher", "angry", "sad", "nervous", "confident", "bored",
            "tired_elder", "joyful_storyteller", "shy", "strict")


def S(name: str) -> StyleParams:
    return style_by_name(name).params


def test_named_styles_exist_and_are_in_range():
    for name in REQUIRED:
        assert name in NAMED_STYLES
    for name, s in NAMED_STYLES.items():
        assert s == s.clamped(), name
        assert s.rest_pose in REST_POSES
    assert NAMED_STYLES["neutral"] == StyleParams()


def test_styles_differ_where_users_expect():
    ex, calm, sad, angry = (S(n) for n in ("excited", "calm", "sad", "angry"))
    assert ex.activation > calm.activation and ex.spatial_extent > calm.spatial_extent
    assert ex.gesture_rate > calm.gesture_rate > S("sleepy").gesture_rate
    assert calm.fluidity > angry.fluidity and angry.power > calm.power
    assert sad.head_tilt < 0 and sad.temporal_extent > NEUTRAL.temporal_extent
    assert len({dataclasses.astuple(s) for s in NAMED_STYLES.values()}) == len(NAMED_STYLES)


@pytest.mark.parametrize("prompt", ["", "   ", "\n\t"])
def test_empty_prompt_is_neutral(prompt):
    params, why = style_from_text(prompt)
    assert params == NEUTRAL
    assert "neutral" in why


def test_unrecognised_prompt_is_neutral_with_explanation():
    params, why = style_from_text("qwzx flurble")
    assert params == NEUTRAL
    assert "nothing matched" in why


@pytest.mark.parametrize(("prompt", "name"), [
    ("energetic keynote speaker", "excited_keynote_speaker"),
    ("calm teacher", "calm_teacher"),
    ("An ANGRY customer!", "angry"),
    ("happy", "joyful_storyteller"),
    ("exhausted", "tired_elder"),
    ("shy student", "shy"),
    ("stern", "strict"),
    ("excitedly", "excited_keynote_speaker"),
    ("a strict teacher", "strict"),
    ("sleepily", "sleepy"),
    ("A Patient Teacher, explaining slowly.", "calm_teacher"),
    ("they were shouting and pounding tables", "angry"),  # inflections: shouting, pounding, tables
])
def test_synonyms_and_descriptions_select_named_styles(prompt, name):
    params, why = style_from_text(prompt)
    assert params == NAMED_STYLES[name]
    assert name in why


def test_sad_with_a_modifier_adjusts_the_style():
    params, why = style_from_text("sad, slow")
    assert "sad" in why and "slow" in why
    assert params.temporal_extent > NEUTRAL.temporal_extent
    assert params.activation < NEUTRAL.activation
    assert params.head_tilt < 0
    params, why = style_from_text("sad and left-handed")
    assert params.handedness < -0.5 and params.head_tilt == S("sad").head_tilt


def test_modifier_words_alone_do_not_pick_a_style():
    params, why = style_from_text("slow and small")
    assert "slow" in why and "small" in why and "_" not in why
    assert params.spatial_extent < NEUTRAL.spatial_extent and params.temporal_extent > NEUTRAL.temporal_extent


def test_intensity_words_scale_deviation():
    mild, _ = style_from_text("slightly excited")
    norm, _ = style_from_text("excited")
    strong, _ = style_from_text("very excited")
    assert NEUTRAL.activation < mild.activation < norm.activation <= strong.activation
    assert NEUTRAL.spatial_extent < mild.spatial_extent < norm.spatial_extent <= strong.spatial_extent
    assert strong == strong.clamped()


def test_several_matches_blend_between():
    mix, why = style_from_text("excited but calm")
    ex, calm = S("excited"), S("calm")
    assert min(ex.activation, calm.activation) < mix.activation < max(ex.activation, calm.activation)
    assert "excited" in why and "calm" in why


def test_modifiers_posture_handedness_rest():
    p, _ = style_from_text("left-handed, hands behind the back, looking down")
    assert p.handedness < -0.5 and p.rest_pose == "behind" and p.head_tilt < 0
    p, _ = style_from_text("right handed")
    assert p.handedness > 0.5
    p, _ = style_from_text("lots of gestures")
    assert p.gesture_rate > 0.8


def test_deterministic():
    assert style_from_text("very nervous fast talker") == style_from_text("very nervous fast talker")


def test_invalid_rest_pose_rejected():
    with pytest.raises(ValueError):
        StyleParams(rest_pose="sitting")


def test_clamped():
    s = StyleParams(spatial_extent=3.0, head_tilt=-4.0, handedness=9.0, power=-1.0, gesture_rate=2.0).clamped()
    assert s.spatial_extent == 1.0 and s.power == 0.0 and s.handedness == 1.0 and s.head_tilt >= -0.5
    assert s.gesture_rate == 1.0


def test_lemma_forms():
    assert "point" in lemma_forms("pointing")
    assert "idea" in lemma_forms("ideas")
    assert "big" in lemma_forms("bigger")
    assert "stop" in lemma_forms("stopped")
    assert "calm" in lemma_forms("calmly") and "happy" in lemma_forms("happily")
    assert lemma_forms("hola") == ("hola",)


# ----------------------------------------------------------------------------------------------------
# Per-part styles


def test_part_names_match_the_skeleton():
    assert PART_NAMES == tuple(BODY_PARTS)


def test_part_styles_inherit_and_group():
    ex, sad = S("excited"), S("sad")
    ps = PartStyles(default=NEUTRAL).with_parts("arms", ex).with_parts("head", sad)
    assert ps.part("left_arm") == ex and ps.part("right_hand") == ex
    assert ps.part("head") == sad and ps.part("torso") == NEUTRAL and ps.part("lower_body") == NEUTRAL
    assert ps.distinct() == (sad, NEUTRAL, ex)
    assert not ps.is_uniform and PartStyles.uniform(ex).is_uniform
    assert PartStyles.coerce(ex) == PartStyles(default=ex) and PartStyles.coerce(ps) is ps
    with pytest.raises(KeyError):
        ps.part("tail")
    with pytest.raises(KeyError):
        ps.with_parts("wings", ex)


def test_parse_style_prompt_per_part():
    plain, _ = parse_style_prompt("calm teacher")
    assert plain == S("calm")
    mix, why = parse_style_prompt("calm teacher; arms: angry; head: sad")
    assert isinstance(mix, PartStyles)
    assert mix.default == S("calm") and mix.part("left_arm") == S("angry") and mix.part("right_hand") == S("angry")
    assert mix.part("head") == S("sad") and mix.part("torso") == S("calm")
    assert "arms" in why and "head" in why
    only, _ = parse_style_prompt("left arm: excited\nlegs: bored")
    assert isinstance(only, PartStyles)
    assert only.default == NEUTRAL and only.part("left_arm") == S("excited") and only.part("right_arm") == NEUTRAL
    assert only.part("lower_body") == S("bored")
