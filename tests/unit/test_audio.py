"""Audio loading and features: what a user notices (durations, rates, windows, messages)."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from gestura.inference.audio import Audio, audio_features, check_not_silent, load_audio, onset_times
from gestura.inference.errors import InputError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "speech" / "hello.wav"
BURSTS = [(0.3, 0.8), (1.2, 1.9), (2.4, 2.8)]  # (start, end) s of the fake syllables


def fake_speech(sr: int = 16000, dur: float = 3.2, f0: float = 180.0, seed: int = 0) -> np.ndarray:
    """Voiced bursts (harmonics + a little noise) separated by near-silence: syllables without words."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(dur * sr)) / sr
    x = 0.001 * rng.standard_normal(len(t))
    for a, b in BURSTS:
        m = (t >= a) & (t < b)
        env = np.sin(np.pi * (t[m] - a) / (b - a)) ** 0.5
        tone = sum(np.sin(2 * np.pi * f0 * k * t[m]) / k for k in (1, 2, 3))
        x[m] += 0.4 * env * tone + 0.01 * rng.standard_normal(m.sum())
    return x.astype(np.float32)


def write(path: Path, data: np.ndarray, sr: int, **kw) -> Path:
    sf.write(str(path), data, sr, **kw)
    return path


# --- loading ----------------------------------------------------------------------------------------------


def test_wav_16k_mono(tmp_path):
    audio = load_audio(write(tmp_path / "a.wav", fake_speech(), 16000))
    assert audio.sample_rate == 16000
    assert audio.samples.dtype == np.float32 and audio.samples.ndim == 1
    assert audio.duration == pytest.approx(3.2, abs=1e-3)
    assert audio.source.endswith("a.wav")


def test_stereo_44k_is_resampled_and_mixed_to_mono(tmp_path):
    sr = 44100
    t = np.arange(int(2.0 * sr)) / sr
    left = 0.8 * np.sin(2 * np.pi * 440 * t)
    path = write(tmp_path / "s.wav", np.stack([left, 0.25 * left], axis=1), sr, subtype="FLOAT")
    audio = load_audio(path)
    assert audio.sample_rate == 16000
    assert audio.duration == pytest.approx(2.0, abs=1e-3)
    assert np.max(np.abs(audio.samples)) == pytest.approx(0.5, abs=0.02)  # mean of 0.8 and 0.2


@pytest.mark.parametrize(
    ("name", "fmt", "subtype"),
    [
        ("a.flac", "FLAC", "PCM_24"),
        ("a.ogg", "OGG", "VORBIS"),
        ("a.mp3", "MP3", "MPEG_LAYER_III"),
        ("a32.wav", "WAV", "PCM_32"),
        ("a8.wav", "WAV", "PCM_U8"),
        ("af.wav", "WAV", "FLOAT"),
    ],
)
def test_formats(tmp_path, name, fmt, subtype):
    x = fake_speech(sr=22050)
    audio = load_audio(write(tmp_path / name, x, 22050, format=fmt, subtype=subtype), sample_rate=16000)
    assert audio.sample_rate == 16000
    assert audio.duration == pytest.approx(3.2, abs=0.06)  # lossy codecs pad a little
    assert 0.3 < np.max(np.abs(audio.samples)) <= 1.0


def test_custom_sample_rate(tmp_path):
    audio = load_audio(write(tmp_path / "a.wav", fake_speech(), 16000), sample_rate=22050)
    assert audio.sample_rate == 22050
    assert len(audio.samples) == pytest.approx(3.2 * 22050, abs=2)


@pytest.mark.parametrize("ext", ["wav", "flac", "mp3"])
def test_window_offset_and_duration(tmp_path, ext):
    sr = 16000
    x = np.zeros(int(4.0 * sr), np.float32)
    x[int(2.0 * sr) :] = 0.5 * np.sin(2 * np.pi * 300 * np.arange(int(2.0 * sr)) / sr)  # tone starts at 2.0 s
    path = write(tmp_path / f"w.{ext}", x, sr)
    win = load_audio(path, offset_s=1.5, duration_s=1.0)
    assert win.duration == pytest.approx(1.0, abs=0.002)
    loud = np.flatnonzero(np.abs(win.samples) > 0.1)
    assert loud[0] / sr == pytest.approx(0.5, abs=0.03)  # the tone at 2.0 s is 0.5 s into the window
    rest = load_audio(path, offset_s=3.0)
    assert rest.duration == pytest.approx(1.0, abs=0.03)
    clipped = load_audio(path, offset_s=3.5, duration_s=10.0)  # a window past the end is shortened
    assert clipped.duration == pytest.approx(0.5, abs=0.03)


def test_silence_loads_but_check_not_silent_complains(tmp_path):
    audio = load_audio(write(tmp_path / "quiet.wav", np.zeros(16000, np.float32), 16000))
    assert audio.duration == pytest.approx(1.0)
    with pytest.raises(InputError, match=r"quiet\.wav is silent \(peak -inf dBFS"):
        check_not_silent(audio)
    hum = Audio(np.full(16000, 0.001, np.float32), 16000, "hum.wav")
    with pytest.raises(InputError, match=r"hum\.wav is silent \(peak -60 dBFS"):
        check_not_silent(hum)
    check_not_silent(Audio(fake_speech(), 16000, "speech.wav"))  # no error


# --- errors -----------------------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"not found: .*nope\.wav"):
        load_audio(tmp_path / "nope.wav")


def test_directory(tmp_path):
    with pytest.raises(InputError, match="is a folder"):
        load_audio(tmp_path)


def test_random_bytes(tmp_path):
    path = tmp_path / "noise.wav"
    path.write_bytes(np.random.default_rng(1).bytes(5000))
    with pytest.raises(InputError, match=r"Could not read audio file .*noise\.wav.*convert it to WAV"):
        load_audio(path)


def test_truncated_header(tmp_path):
    good = write(tmp_path / "good.wav", fake_speech(), 16000)
    bad = tmp_path / "cut.wav"
    bad.write_bytes(good.read_bytes()[:30])
    with pytest.raises(InputError, match=r"cut\.wav"):
        load_audio(bad)


def test_zero_length(tmp_path):
    path = write(tmp_path / "empty.wav", np.zeros(0, np.float32), 16000)
    with pytest.raises(InputError, match=r"empty\.wav contains no samples"):
        load_audio(path)
    (tmp_path / "zero.flac").write_bytes(b"")
    with pytest.raises(InputError, match=r"zero\.flac"):
        load_audio(tmp_path / "zero.flac")


def test_offset_past_end(tmp_path):
    path = write(tmp_path / "a.wav", fake_speech(), 16000)
    with pytest.raises(InputError, match=r"offset 5\.00 s is past the end of .*a\.wav \(3\.20 s long\)"):
        load_audio(path, offset_s=5.0)
    with pytest.raises(InputError, match="zero or positive"):
        load_audio(path, offset_s=-1.0)
    with pytest.raises(InputError, match="must be positive"):
        load_audio(path, duration_s=0.0)


def test_too_long(tmp_path):
    path = write(tmp_path / "long.wav", np.zeros(16000 * 130, np.int16), 16000)
    with pytest.raises(InputError, match=r"2\.2 min long; the limit is 2 min.*Split it"):
        load_audio(path, max_duration_s=120.0)
    assert load_audio(path, offset_s=100.0, max_duration_s=120.0).duration == pytest.approx(30.0)  # window fits


def test_nan_samples(tmp_path):
    x = fake_speech()
    x[100] = np.nan
    path = write(tmp_path / "nan.wav", x, 16000, subtype="FLOAT")
    with pytest.raises(InputError, match=r"nan\.wav contains NaN or infinite samples"):
        load_audio(path)


# --- features ---------------------------------------------------------------------------------------------


def test_features_shapes_and_ranges():
    audio = Audio(fake_speech(), 16000, "fake")
    feats = audio_features(audio, fps=30.0)
    n = math.ceil(3.2 * 30)
    assert feats.num_frames == n
    for arr in (feats.energy, feats.onset, feats.pitch_hz, feats.voiced):
        assert arr.shape == (n,)
    assert feats.log_mel.shape == (n, 64) and feats.log_mel.dtype == np.float32
    assert 0.0 <= feats.energy.min() and feats.energy.max() <= 1.0 and feats.energy.max() == pytest.approx(1.0)
    assert 0.0 <= feats.onset.min() and feats.onset.max() <= 1.0
    assert feats.voiced.dtype == bool


def test_features_follow_the_bursts():
    fps = 30.0
    feats = audio_features(Audio(fake_speech(f0=180.0), 16000), fps=fps)
    t = np.arange(feats.num_frames) / fps
    inside = np.zeros(feats.num_frames, bool)
    for a, b in BURSTS:
        inside |= (t > a + 0.1) & (t < b - 0.1)
    gaps = (t > 0.9) & (t < 1.1) | (t > 2.0) & (t < 2.3) | (t > 2.95)
    assert feats.voiced[inside].mean() > 0.9 and feats.voiced[gaps].mean() < 0.1
    assert feats.energy[inside].mean() > 0.5 and feats.energy[gaps].max() < 0.05
    assert np.median(feats.pitch_hz[inside]) == pytest.approx(180.0, rel=0.05)
    assert np.all(feats.pitch_hz[gaps] == 0)


def test_features_other_fps_and_speed():
    audio = load_audio(EXAMPLE)
    audio_features(audio, fps=24.0)  # warm up librosa's numba code
    assert audio_features(audio, fps=24.0).num_frames == math.ceil(audio.duration * 24.0)
    long = Audio(np.tile(audio.samples, 3), 16000)  # ~32 s
    t0 = time.perf_counter()
    feats = audio_features(long)
    assert time.perf_counter() - t0 < 2.0  # brief: 30 s in under 1 s; headroom for a busy test machine
    assert 0.4 < feats.voiced.mean() < 0.95  # speech with pauses
    assert 70 < np.median(feats.pitch_hz[feats.pitch_hz > 0]) < 300


def test_onset_times_near_burst_starts():
    onsets = onset_times(Audio(fake_speech(), 16000))
    assert onsets.ndim == 1 and np.all(np.diff(onsets) > 0)
    for a, _ in BURSTS:
        assert np.min(np.abs(onsets - a)) < 0.12
    assert onset_times(Audio(np.zeros(16000, np.float32), 16000)).size == 0
