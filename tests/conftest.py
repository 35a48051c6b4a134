"""Makes the repository importable as the package ``gestura`` (the extension's own name), the way
Blender imports an installed extension, without touching sys.path."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

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
