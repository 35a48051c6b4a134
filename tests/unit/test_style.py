"""Style parameters and the keyword text-to-style parser."""

from __future__ import annotations

import dataclasses

import pytest

from gestura.inference.style import NAMED_STYLES, NEUTRAL, REST_POSES, StyleParams, style_from_text

REQUIRED = ("neutral", "excited", "calm", "angry", "sad", "nervous", "confident", "bored", "tired", "joyful",
            "shy", "strict")


def test_named_styles_exist_and_are_in_range():
    for name in REQUIRED:
        assert name in NAMED_STYLES
    for name, s in NAMED_STYLES.items():
        assert s == s.clamped(), name
        assert s.rest_pose in REST_POSES
    assert NAMED_STYLES["neutral"] == StyleParams()


def test_styles_differ_where_users_expect():
    ex, calm, sad, angry = (NAMED_STYLES[n] for n in ("excited", "calm", "sad", "angry"))
    assert ex.activation > calm.activation and ex.spatial_extent > calm.spatial_extent
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
    ("energetic keynote speaker", "excited"),
    ("calm teacher", "calm"),
    ("An ANGRY customer!", "angry"),
    ("happy", "joyful"),
    ("exhausted", "tired"),
    ("shy student", "shy"),
    ("stern", "strict"),
    ("excitedly", "excited"),
])
def test_synonyms_select_named_styles(prompt, name):
    params, why = style_from_text(prompt)
    assert params == NAMED_STYLES[name]
    assert name in why


def test_sad_slow_blends():
    params, why = style_from_text("sad, slow")
    assert "sad" in why and "slow" in why
    assert params.temporal_extent > NEUTRAL.temporal_extent
    assert params.activation < NEUTRAL.activation
    assert params.head_tilt < 0


def test_intensity_words_scale_deviation():
    mild, _ = style_from_text("slightly excited")
    norm, _ = style_from_text("excited")
    strong, _ = style_from_text("very excited")
    assert NEUTRAL.activation < mild.activation < norm.activation <= strong.activation
    assert NEUTRAL.spatial_extent < mild.spatial_extent < norm.spatial_extent < strong.spatial_extent
    assert strong == strong.clamped()


def test_several_matches_blend_between():
    mix, why = style_from_text("excited but calm")
    ex, calm = NAMED_STYLES["excited"], NAMED_STYLES["calm"]
    assert min(ex.activation, calm.activation) < mix.activation < max(ex.activation, calm.activation)
    assert "excited" in why and "calm" in why


def test_modifiers_posture_handedness_rest():
    p, _ = style_from_text("left-handed, hands behind the back, looking down")
    assert p.handedness < -0.5 and p.rest_pose == "behind" and p.head_tilt < 0
    p, _ = style_from_text("right handed")
    assert p.handedness > 0.5


def test_deterministic():
    assert style_from_text("very nervous fast talker") == style_from_text("very nervous fast talker")


def test_invalid_rest_pose_rejected():
    with pytest.raises(ValueError):
        StyleParams(rest_pose="sitting")


def test_clamped():
    s = StyleParams(spatial_extent=3.0, head_tilt=-4.0, handedness=9.0, power=-1.0).clamped()
    assert s.spatial_extent == 1.0 and s.power == 0.0 and s.handedness == 1.0 and s.head_tilt >= -0.5
