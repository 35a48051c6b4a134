"""Loads this checkout as the package ``gestura`` (the extension's own name), the way Blender imports an
installed extension, for dev scripts run as ``python tools/<script>.py`` (tools/ is then on sys.path)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def load_gestura() -> ModuleType:
    if "gestura" in sys.modules:
        return sys.modules["gestura"]
    spec = importlib.util.spec_from_file_location(
        "gestura", ROOT / "__init__.py", submodule_search_locations=[str(ROOT)]
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["gestura"] = module
    spec.loader.exec_module(module)
    return module
