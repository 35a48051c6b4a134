"""A small BVH reader: hierarchy (offsets, channels, End Sites) and motion, as local rotation matrices.

Conventions (Biovision's, as Blender's importer reads them): at rest every joint frame is aligned with the world,
a joint's local transform is translate(offset) @ rotate(channels); the rotation channels apply in the order listed
left to right as matrices, so "Zrotation Xrotation Yrotation" is R = Rz @ Rx @ Ry (Euler order "YXZ" in
`inference.rotations`). Position channels replace the offset's coordinates (for the root they are its position in
the world). Angles are degrees. Whitespace of any kind (tabs, CRLF) separates tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...inference.rotations import euler_to_matrix

_ROT = {"xrotation": "X", "yrotation": "Y", "zrotation": "Z"}
_POS = {"xposition": 0, "yposition": 1, "zposition": 2}


class BvhError(ValueError):
    """A malformed BVH file; the message names the file and what is wrong."""


@dataclass
class Bvh:
    names: list[str]
    parents: list[int]  # -1 for the root; parents come before children
    offsets: np.ndarray  # (J, 3) rest offsets from the parent, file units
    channels: list[tuple[str, ...]]  # per joint, as written ("Xposition", "Zrotation", ...)
    end_sites: dict[int, np.ndarray]  # joint -> End Site offset (the tip of a leaf bone)
    frame_time: float  # seconds, as the header claims
    positions: np.ndarray  # (T, J, 3) local translations per frame (the offset unless position channels)
    rotations: np.ndarray  # (T, J, 3, 3) local rotation matrices per frame

    @property
    def num_frames(self) -> int:
        return int(self.rotations.shape[0])

    @property
    def rotation_orders(self) -> list[str]:
        """Per joint, the Euler order in `inference.rotations`' convention ("YXZ" for Z X Y channels)."""
        return [_euler_order(ch) for ch in self.channels]

    def index(self, name: str) -> int:
        return self.names.index(name)

    def rest_positions(self) -> np.ndarray:
        """World joint positions (J, 3) of the rest pose (all rotations zero, offsets only)."""
        pos = np.zeros((len(self.names), 3))
        for j, p in enumerate(self.parents):
            pos[j] = self.offsets[j] if p < 0 else pos[p] + self.offsets[j]
        return pos

    def global_transforms(self) -> tuple[np.ndarray, np.ndarray]:
        """World rotations (T, J, 3, 3) and positions (T, J, 3) of every frame."""
        rot = np.empty_like(self.rotations)
        pos = np.empty_like(self.positions)
        for j, p in enumerate(self.parents):
            if p < 0:
                rot[:, j], pos[:, j] = self.rotations[:, j], self.positions[:, j]
            else:
                rot[:, j] = rot[:, p] @ self.rotations[:, j]
                pos[:, j] = pos[:, p] + np.einsum("tab,tb->ta", rot[:, p], self.positions[:, j])
        return rot, pos


def _euler_order(channels: tuple[str, ...]) -> str:
    axes = [_ROT[c.lower()] for c in channels if c.lower() in _ROT]
    return "".join(reversed(axes)) if len(axes) == 3 else ""


class _Tokens:
    def __init__(self, text: str, source: str) -> None:
        self.items = text.split()
        self.pos = 0
        self.source = source

    def fail(self, what: str) -> BvhError:
        return BvhError(f"{self.source}: {what} (at token {self.pos} of {len(self.items)})")

    def next(self, what: str) -> str:
        if self.pos >= len(self.items):
            raise self.fail(f"unexpected end of file, expected {what}")
        self.pos += 1
        return self.items[self.pos - 1]

    def expect(self, word: str) -> None:
        got = self.next(repr(word))
        if got.upper() != word.upper():
            raise self.fail(f"expected {word!r}, got {got!r}")

    def number(self, what: str) -> float:
        tok = self.next(what)
        try:
            return float(tok)
        except ValueError:
            raise self.fail(f"expected a number for {what}, got {tok!r}") from None

    def peek(self) -> str:
        return self.items[self.pos] if self.pos < len(self.items) else ""


def parse_bvh(text: str, source: str = "BVH") -> Bvh:
    """Parse BVH text. Raises BvhError on malformed input."""
    tok = _Tokens(text, source)
    tok.expect("HIERARCHY")
    names: list[str] = []
    parents: list[int] = []
    offsets: list[tuple[float, float, float]] = []
    channels: list[tuple[str, ...]] = []
    end_sites: dict[int, np.ndarray] = {}

    def read_offset(owner: str) -> tuple[float, float, float]:
        tok.expect("OFFSET")
        x, y, z = (tok.number(f"the OFFSET of {owner}") for _ in range(3))
        return x, y, z

    def read_joint(parent: int) -> None:
        name_parts = []
        while tok.peek() != "{":
            name_parts.append(tok.next("a joint name"))
        if not name_parts:
            raise tok.fail("a joint without a name")
        name = " ".join(name_parts)
        tok.expect("{")
        j = len(names)
        names.append(name)
        parents.append(parent)
        offsets.append(read_offset(name))
        chans: tuple[str, ...] = ()
        if tok.peek().upper() == "CHANNELS":
            tok.next("CHANNELS")
            count = tok.number(f"the channel count of {name}")
            if count != int(count) or not 0 <= count <= 9:
                raise tok.fail(f"bad channel count {count} for {name}")
            chans = tuple(tok.next(f"a channel of {name}") for _ in range(int(count)))
            for c in chans:
                if c.lower() not in _ROT and c.lower() not in _POS:
                    raise tok.fail(f"unknown channel {c!r} for {name}")
            n_rot = sum(c.lower() in _ROT for c in chans)
            if n_rot not in (0, 3):
                raise tok.fail(f"{name} has {n_rot} rotation channels; 0 or 3 are supported")
        channels.append(chans)
        while True:
            word = tok.next(f"JOINT, End Site or '}}' in {name}")
            if word == "}":
                return
            if word.upper() == "JOINT":
                read_joint(j)
            elif word.upper() == "END":
                tok.expect("Site")
                tok.expect("{")
                end_sites[j] = np.array(read_offset(f"the End Site of {name}"))
                tok.expect("}")
            else:
                raise tok.fail(f"unexpected {word!r} in joint {name}")

    tok.expect("ROOT")
    read_joint(-1)
    if tok.peek().upper() == "ROOT":
        raise tok.fail("several ROOT hierarchies are not supported")
    tok.expect("MOTION")
    tok.expect("Frames:")
    n_frames = tok.number("the frame count")
    if n_frames != int(n_frames) or n_frames < 0:
        raise tok.fail(f"bad frame count {n_frames}")
    tok.expect("Frame")
    tok.expect("Time:")
    frame_time = tok.number("the frame time")
    if not np.isfinite(frame_time) or frame_time <= 0:
        raise tok.fail(f"frame time must be positive, got {frame_time}")

    width = sum(len(c) for c in channels)
    rest = tok.items[tok.pos:]
    if len(rest) != int(n_frames) * width:
        have = len(rest) / width if width else 0
        raise BvhError(
            f"{source}: the header says {int(n_frames)} frames of {width} channels, the file holds "
            f"{len(rest)} values ({have:.2f} frames)"
        )
    try:
        data = np.fromiter(map(float, rest), dtype=np.float64, count=len(rest)).reshape(int(n_frames), width)
    except ValueError:
        raise BvhError(f"{source}: the MOTION section holds a value that is not a number") from None
    if not np.isfinite(data).all():
        raise BvhError(f"{source}: the MOTION section holds NaN or infinite values")

    offs = np.array(offsets, dtype=np.float64).reshape(-1, 3)
    n_j = len(names)
    positions = np.broadcast_to(offs, (int(n_frames), n_j, 3)).copy()
    rotations = np.broadcast_to(np.eye(3), (int(n_frames), n_j, 3, 3)).copy()
    col = 0
    for j, chans in enumerate(channels):
        block = data[:, col:col + len(chans)]
        col += len(chans)
        euler = np.zeros((int(n_frames), 3))
        for k, c in enumerate(chans):
            if c.lower() in _POS:
                positions[:, j, _POS[c.lower()]] = block[:, k]
            else:
                euler[:, "XYZ".index(_ROT[c.lower()])] = np.radians(block[:, k])
        order = _euler_order(chans)
        if order:
            rotations[:, j] = euler_to_matrix(euler, order)
    return Bvh(names, parents, offs, channels, end_sites, float(frame_time), positions, rotations)


def read_bvh(path: str | Path) -> Bvh:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig", errors="replace")
    except OSError as exc:
        raise BvhError(f"cannot read BVH file {path}: {exc}") from exc
    return parse_bvh(text, str(path))
