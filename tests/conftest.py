"""Makes the repository importable as the package ``gestura`` (the extension's own name), the way
Blender imports an installed extension, without touching sys.path."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load_repo_as_package() -> None:
    if "gestura" in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(
        "gestura", ROOT / "__init__.py", submodule_search_locations=[str(ROOT)]
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["gestura"] = module
    spec.loader.exec_module(module)


_load_repo_as_package()


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tests that use torch run it on one thread: their convolutions are tiny, and on a busy 2-core machine
    several OpenMP threads were 10-20x slower than one. Tests that never import torch are left alone."""
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
