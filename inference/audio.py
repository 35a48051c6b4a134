"""Speech audio in: load any common file as 16 kHz float mono, and compute the per-frame features the
gesture model and the beat metric use (energy, onsets, pitch, voicing, log-mel) at the animation rate.

No bpy and no torch here; librosa is imported lazily because its import pulls in numba.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from .errors import InputError

# A clip whose loudest sample is below this is treated as silence (a muted or unplugged recording).
SILENCE_PEAK_DBFS = -45.0
N_MELS = 64


@dataclass
class Audio:
    samples: np.ndarray  # float32 mono, in [-1, 1]
    sample_rate: int
    source: str = ""  # path, for messages

    @property
    def duration(self) -> float:
        return len(self.samples) / float(self.sample_rate)


def load_audio(
    path: str | Path,
    *,
    offset_s: float = 0.0,
    duration_s: float | None = None,
    sample_rate: int = 16000,
    max_duration_s: float = 1800.0,
) -> Audio:
    """Read ``path`` (wav, flac, ogg, mp3, ...) as mono float32 at ``sample_rate``.

    ``offset_s``/``duration_s`` select a window (a sound strip's trims); only that window is decoded.
    """
    path = Path(path)
    name = str(path)
    if not path.exists():
        raise InputError(f"Audio file not found: {name}. Check the path (relative paths are relative to the .blend).")
    if path.is_dir():
        raise InputError(f"Audio path is a folder, not a file: {name}. Pick a .wav, .flac, .ogg or .mp3 file.")
    if not math.isfinite(offset_s) or offset_s < 0:
        raise InputError(f"Audio offset must be zero or positive, got {offset_s} s for {name}.")
    if duration_s is not None and (not math.isfinite(duration_s) or duration_s <= 0):
        raise InputError(f"Audio window length must be positive, got {duration_s} s for {name}.")

    try:
        data, file_rate = _read_window(path, offset_s, duration_s, max_duration_s)
    except InputError:
        raise
    except Exception as exc:  # soundfile raises LibsndfileError/RuntimeError/ValueError on bad files
        data, file_rate = _read_with_audioread(path, offset_s, duration_s, max_duration_s, exc)

    if data.size == 0:
        raise InputError(f"Audio file {name} contains no samples (zero length). Export the audio again.")
    if not np.all(np.isfinite(data)):
        raise InputError(f"Audio file {name} contains NaN or infinite samples; it is damaged. Export it again.")

    mono = data.mean(axis=1) if data.ndim == 2 else data  # multichannel -> mono mean
    mono = np.asarray(mono, dtype=np.float32)
    if file_rate != sample_rate:
        import soxr

        mono = soxr.resample(mono, file_rate, sample_rate, quality="HQ").astype(np.float32)
    # Float files may exceed full scale; clip rather than rescale so loudness stays comparable across clips.
    np.clip(mono, -1.0, 1.0, out=mono)
    return Audio(samples=mono, sample_rate=int(sample_rate), source=name)


def _check_window(name: str, total_s: float, offset_s: float, duration_s: float | None, max_s: float) -> float:
    """Validate the window against the file's length; return the window length in seconds."""
    if total_s <= 0:
        raise InputError(f"Audio file {name} contains no samples (zero length). Export the audio again.")
    if offset_s >= total_s:
        raise InputError(
            f"Audio offset {offset_s:.2f} s is past the end of {name} ({total_s:.2f} s long). "
            "Check the sound strip's trim or the start offset."
        )
    window = total_s - offset_s if duration_s is None else min(duration_s, total_s - offset_s)
    if window > max_s:
        raise InputError(
            f"Audio {name} is {window / 60:.1f} min long; the limit is {max_s / 60:.0f} min per generation. "
            "Split it into shorter sound strips (or trim the strip) and generate each part."
        )
    return window


def _read_window(path: Path, offset_s: float, duration_s: float | None, max_s: float) -> tuple[np.ndarray, int]:
    with sf.SoundFile(str(path)) as f:
        rate = int(f.samplerate)
        total = f.frames / rate if f.frames > 0 else 0.0
        window = _check_window(str(path), total, offset_s, duration_s, max_s)
        start = int(round(offset_s * rate))
        count = int(round(window * rate))
        if start and f.seekable():
            f.seek(start)
        elif start:
            f.read(start, dtype="float32")  # not seekable: decode and discard
        data = f.read(count, dtype="float32", always_2d=True)
    return data, rate


def _read_with_audioread(
    path: Path, offset_s: float, duration_s: float | None, max_s: float, sf_error: Exception
) -> tuple[np.ndarray, int]:
    """Fallback for formats libsndfile cannot decode (m4a, aac, ...) when an audioread backend exists."""
    try:
        import audioread

        with audioread.audio_open(str(path)) as f:
            rate, channels = int(f.samplerate), int(f.channels)
            _check_window(str(path), float(f.duration), offset_s, duration_s, max_s)
            pcm = b"".join(f)
    except InputError:
        raise
    except Exception:
        reason = str(sf_error).strip() or type(sf_error).__name__
        raise InputError(
            f"Could not read audio file {path}: {reason}. The file is damaged or in an unsupported format; "
            "convert it to WAV, FLAC, OGG or MP3 (for example with Audacity or ffmpeg)."
        ) from sf_error
    data = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
    data = data[: len(data) // channels * channels].reshape(-1, channels)
    start = int(round(offset_s * rate))
    stop = None if duration_s is None else start + int(round(duration_s * rate))
    return data[start:stop], rate


def peak_dbfs(audio: Audio) -> float:
    peak = float(np.max(np.abs(audio.samples))) if audio.samples.size else 0.0
    return 20.0 * math.log10(peak) if peak > 0 else -math.inf


def check_not_silent(audio: Audio) -> None:
    """Raise InputError when the clip has no speech-level signal (muted track, wrong channel, empty take)."""
    db = peak_dbfs(audio)
    if db < SILENCE_PEAK_DBFS:
        shown = "-inf" if math.isinf(db) else f"{db:.0f}"
        raise InputError(
            f"Audio {audio.source or '(in memory)'} is silent (peak {shown} dBFS, below {SILENCE_PEAK_DBFS:.0f} dBFS). "
            "Check that the right file or sound strip is selected and that it is not muted."
        )


@dataclass
class AudioFeatures:
    fps: float
    energy: np.ndarray  # (T,) RMS energy normalised to [0,1] by the clip's robust max (95th pct)
    onset: np.ndarray  # (T,) onset strength, normalised to [0,1]
    pitch_hz: np.ndarray  # (T,) f0 in Hz, 0 where unvoiced
    voiced: np.ndarray  # (T,) bool, speech present
    log_mel: np.ndarray  # (T, 64) float32 log-mel

    @property
    def num_frames(self) -> int:
        return int(self.energy.shape[0])


def _analysis_params(sr: int, fps: float) -> tuple[int, int]:
    hop = max(1, int(round(sr / fps)))
    n_fft = 1 << max(8, int(math.ceil(math.log2(0.064 * sr))))  # ~64 ms window: two periods of a low voice
    return hop, n_fft


def audio_features(audio: Audio, fps: float = 30.0) -> AudioFeatures:
    """Frame-aligned features at ``fps``: frame t covers time t/fps; T = ceil(duration * fps)."""
    import librosa

    if fps <= 0:
        raise InputError(f"Frame rate must be positive, got {fps}.")
    y, sr = audio.samples.astype(np.float32, copy=False), audio.sample_rate
    num = max(1, int(math.ceil(audio.duration * fps - 1e-9)))
    hop, n_fft = _analysis_params(sr, fps)
    if len(y) < n_fft:  # librosa wants at least one full window
        y = np.pad(y, (0, n_fft - len(y)))

    # Analysis runs on an integer hop (~1/fps); features are then sampled at the exact frame times t/fps.
    rms = librosa.feature.rms(y=y, frame_length=n_fft, hop_length=hop)[0]
    onset = librosa.onset.onset_strength(y=y, sr=sr, hop_length=hop, n_fft=n_fft)
    mel = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=n_fft, hop_length=hop, n_mels=N_MELS)
    # pyin at 20-cent resolution: a 30 s clip in ~0.3 s, and it gives a voicing decision (yin does not).
    f0, f0_voiced, _ = librosa.pyin(
        y, fmin=60.0, fmax=500.0, sr=sr, frame_length=n_fft, hop_length=hop, resolution=0.2, center=True
    )

    times = np.arange(num) / fps
    idx = np.clip(np.round(times * sr / hop).astype(int), 0, len(rms) - 1)
    src_t = np.arange(len(rms)) * hop / sr

    rms_t = np.interp(times, src_t, rms)
    p95 = float(np.percentile(rms, 95))
    energy = np.clip(rms_t / p95, 0.0, 1.0) if p95 > 1e-8 else np.zeros(num)

    onset_t = np.interp(times, np.arange(len(onset)) * hop / sr, onset)
    omax = float(onset.max()) if onset.size else 0.0
    onset_n = onset_t / omax if omax > 1e-8 else np.zeros(num)

    active = _energy_active(rms)[idx]
    f0_ok = np.nan_to_num(f0)[idx] > 0
    pitched = f0_voiced[idx] & f0_ok & active
    pitch = np.where(pitched, np.nan_to_num(f0)[idx], 0.0)

    log_mel = np.log(mel.T + 1e-6)
    log_mel_t = np.stack([np.interp(times, src_t, log_mel[:, k]) for k in range(N_MELS)], axis=1)

    return AudioFeatures(
        fps=float(fps),
        energy=energy.astype(np.float32),
        onset=np.clip(onset_n, 0.0, 1.0).astype(np.float32),
        pitch_hz=pitch.astype(np.float32),
        voiced=(active | pitched).astype(bool),
        log_mel=log_mel_t.astype(np.float32),
    )


def _energy_active(rms: np.ndarray) -> np.ndarray:
    """Speech-present frames: energy well above the clip's own noise floor (adapts to the recording)."""
    db = 20.0 * np.log10(np.maximum(rms, 1e-10))
    floor, peak = float(np.percentile(db, 10)), float(np.percentile(db, 99))
    # A quarter of the way from floor to peak, at least 6 dB over the floor, never below -60 dBFS.
    threshold = max(floor + 0.25 * (peak - floor), floor + 6.0, -60.0)
    return db > threshold


def onset_times(audio: Audio) -> np.ndarray:
    """Onset times in seconds (librosa's onset detector), used by the beat-alignment metric."""
    import librosa

    y = audio.samples.astype(np.float32, copy=False)
    if y.size == 0 or not np.any(y):
        return np.zeros(0, dtype=np.float64)
    hop = max(1, audio.sample_rate // 100)  # 10 ms: finer than a frame so the metric is not quantised
    times = librosa.onset.onset_detect(y=y, sr=audio.sample_rate, hop_length=hop, units="time", backtrack=False)
    return np.asarray(times, dtype=np.float64)
