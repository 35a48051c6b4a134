"""The per-body-part motion autoencoder (residual VQ), its torch FK, and the FGD extractor's training task:
a few training steps on a tiny synthetic corpus, loss decreases, exact checkpoint round trip, resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from gestura.inference.rotations import axis_angle_to_quat, quat_to_6d, sixd_to_matrix
from gestura.inference.skeleton import NUM_JOINTS, REST_PELVIS_HEIGHT, forward_kinematics
from gestura.training.checkpoint import CheckpointError, load_model, load_weights
from gestura.training.models.motion_ae import (
    PART_JOINTS,
    PARTS,
    MotionAE,
    MotionAEConfig,
    ResidualVQ,
    features_to_motion,
    fk_torch,
    integrate_root,
    make_task,
    motion_features,
    quat_to_matrix_torch,
    root_velocity,
    sixd_to_matrix_torch,
)
from gestura.training.trainer import TrainConfig, train

TINY = {"latent_dim": 8, "channels": dict.fromkeys(PARTS, 16), "depth": 1, "codebook_size": 32,
        "num_quantizers": 2}



def synthetic_motion(rng: np.random.Generator, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Smooth random motion: every joint swings about a random axis with a few sinusoids."""
    t = np.arange(frames)[:, None, None] / 30.0
    freq = rng.uniform(0.2, 1.5, size=(1, NUM_JOINTS, 3))
    phase = rng.uniform(0, 2 * np.pi, size=(1, NUM_JOINTS, 3))
    amp = rng.uniform(0.02, 0.2, size=(1, NUM_JOINTS, 3))
    aa = amp * np.sin(2 * np.pi * freq * t + phase)
    root = np.zeros((frames, 3))
    root[:, 0] = 0.02 * np.sin(np.arange(frames) / 40.0)
    root[:, 1] = REST_PELVIS_HEIGHT
    return axis_angle_to_quat(aa).astype(np.float32), root.astype(np.float32)


def write_synthetic_corpus(out: Path, seed: int = 0, clips: dict[str, int] | None = None) -> Path:
    """A corpus folder in training/corpus/build.py's layout (manifest + safetensors + JSON shards), motion only."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    clips = clips or {"train": 12, "val": 3, "test": 3}
    shards, index = [], 0
    clicks = np.zeros(16000, np.int16)  # one second of audio per clip: clicks every 0.25 s
    for k in range(0, 16000, 4000):
        clicks[k:k + 80] = (8000 * rng.normal(size=80)).astype(np.int16)
    for split, n in clips.items():
        motions = [synthetic_motion(rng, int(rng.integers(90, 200))) for _ in range(n)]
        frames = np.cumsum([0] + [len(q) for q, _ in motions]).astype(np.int64)
        rel = f"{split}/shard_00000.safetensors"
        (out / split).mkdir(parents=True, exist_ok=True)
        save_file({
            "rotations": np.concatenate([q for q, _ in motions]), "root": np.concatenate([r for _, r in motions]),
            "audio": np.tile(clicks, n), "frame_offsets": frames,
            "sample_offsets": np.arange(n + 1, dtype=np.int64) * len(clicks),
            "style_ids": np.zeros(n, np.int32), "part_style_ids": np.zeros((n, 7), np.int32),
        }, str(out / rel))
        meta = [{"index": index + k, "split": split, "words": [], "style_id": 0} for k in range(n)]
        index += n
        (out / rel).with_suffix(".json").write_text(json.dumps(meta))
        shards.append({"path": rel, "clips": n})
    (out / "manifest.json").write_text(json.dumps({"format": "gestura-corpus-1", "shards": shards}))
    return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return write_synthetic_corpus(tmp_path_factory.mktemp("corpus"))


def test_torch_fk_and_6d_match_numpy():
    rng = np.random.default_rng(1)
    q, root = synthetic_motion(rng, 20)
    _, ref = forward_kinematics(q, root)
    sixd, vel, _ = motion_features(torch.from_numpy(q), torch.from_numpy(root))
    assert np.allclose(sixd.numpy(), quat_to_6d(q.astype(np.float64)), atol=1e-5)
    assert np.allclose(sixd_to_matrix_torch(sixd).numpy(), sixd_to_matrix(sixd.numpy().astype(np.float64)), atol=1e-5)
    pos = fk_torch(quat_to_matrix_torch(torch.from_numpy(q).double()), torch.from_numpy(root).double())
    assert np.allclose(pos.numpy(), ref, atol=1e-6)
    back = integrate_root(root_velocity(torch.from_numpy(root).double()), torch.from_numpy(root[0]).double())
    assert np.allclose(back.numpy(), root, atol=1e-6)
    quats, root2 = features_to_motion(sixd.numpy(), vel.numpy(), root[0])
    assert np.allclose(forward_kinematics(quats, root2)[1], ref, atol=1e-4)


def test_parts_cover_every_joint_once():
    joints = sorted(j for p in PARTS for j in PART_JOINTS[p])
    assert joints == list(range(NUM_JOINTS))


def test_residual_vq_learns_and_restarts_dead_codes():
    torch.manual_seed(0)
    vq = ResidualVQ(dim=4, codebook_size=16, num_quantizers=3, decay=0.8, restart_threshold=0.5, dropout_prob=0.0)
    data = torch.randn(512, 4)
    vq.train()
    errs = []
    for _ in range(30):
        zq, codes, commit = vq(data)
        errs.append(float(commit))
    assert errs[-1] < errs[0]
    # Each residual layer reduces the error further.
    vq.eval()
    e = [float(((vq(data, n_layers=k)[0] - data) ** 2).mean()) for k in (1, 2, 3)]
    assert e[0] > e[1] > e[2]
    zq, codes, _ = vq(data)
    assert codes.shape == (512, 3) and torch.allclose(vq.decode_codes(codes), zq, atol=1e-5)
    # A code nobody picks dies and is restarted from the data.
    vq.train()
    vq.usage[0, 0] = 0.0
    vq.codebooks[0, 0] = 1e6
    vq(data)
    assert float(vq.codebooks[0, 0].abs().max()) < 100


def test_model_shapes_and_kl_variant():
    x = torch.randn(2, 16, NUM_JOINTS, 6)
    v = torch.randn(2, 16, 3)
    for latent in ("rvq", "kl"):
        model = MotionAE(MotionAEConfig(**{**TINY, "latent": latent}))
        z, extras = model.encode(x, v)
        assert z.shape == (2, 4, 7, 8)
        six, vel = model.decode(z)
        assert six.shape == x.shape and vel.shape == v.shape
        assert float(extras["loss_latent"].detach()) >= 0
    with pytest.raises(ValueError, match="multiple of 4"):
        model.encode(x[:, :15], v[:, :15])


def test_motion_ae_trains_round_trips_and_resumes(corpus, tmp_path):
    task = make_task(corpus=str(corpus), window=32, batch_size=8, val_clips=2, model=TINY)
    cfg = TrainConfig(out_dir=str(tmp_path / "ae"), steps=40, lr=1e-2, warmup=5, log_every=10, eval_every=20,
                      ckpt_every=20, device="cpu", progress=False, plot=False, seed=1)
    result = train(task, cfg)
    assert result.history[-1]["loss"] < 0.9 * result.history[0]["loss"]
    assert set(result.last_metrics) >= {"mpjpe_cm", *(f"mpjpe_{p}_cm" for p in PARTS)}
    # Rebuilt from safetensors + JSON alone, the model gives exactly the same output.
    model, ckpt = load_model(result.latest)
    assert isinstance(model, MotionAE) and ckpt.step == 40
    trained = MotionAE(MotionAEConfig(**TINY))
    load_weights(trained, result.latest)
    q, r = task.val_set.clip(0)
    a = model.reconstruct(q[None], r[None])
    b = trained.eval().reconstruct(q[None], r[None])
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    test = task.test(model)
    assert 0 < test["mpjpe_cm"] < 100 and test["mpjpe_left_hand_cm"] > 0
    # An incompatible architecture is named.
    with pytest.raises(CheckpointError, match="latent_dim: checkpoint 8 vs model 16"):
        load_weights(MotionAE(MotionAEConfig(**{**TINY, "latent_dim": 16})), result.latest)
    # Resume goes on from step 40.
    cfg.steps = 50
    again = train(task, cfg)
    assert again.start_step == 40 and again.step == 50


def test_fgd_extractor_trains_and_loads(corpus, tmp_path):
    from gestura.training.metrics import FGDExtractor
    from gestura.training.models.fgd import make_task as make_fgd_task

    task = make_fgd_task(corpus=str(corpus), batch_size=16, val_clips=2, model={"channels": 32, "embed_dim": 8},
                         test_beats=False)  # librosa's first onset detection costs ~10 s
    cfg = TrainConfig(out_dir=str(tmp_path / "fgd"), steps=30, lr=2e-3, warmup=3, log_every=10, eval_every=30,
                      ckpt_every=30, device="cpu", progress=False, plot=False)
    result = train(task, cfg)
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    ex = FGDExtractor.load(result.best)
    assert ex.describe()["embed_dim"] == 8
    clips = [task.val_set.clip(k) for k in range(len(task.val_set))]
    emb = ex.embed([(q.numpy(), r.numpy()) for q, r in clips])
    assert emb.shape[1] == 8 and len(emb) > 10
    ref = task.test(ex.model)
    assert ref["fgd_train_vs_test"] > 0 and ref["diversity_test"] > 0 and ref["test_clips"] == 3
    assert ref["jerk_test"] > 0
