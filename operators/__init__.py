"""Operators: thin bpy layers over inference/ and retarget/. One operator per module."""

from . import (
    export_bvh,
    generate,
    mapping_clear,
    mapping_detect,
    mapping_load,
    mapping_mirror,
    mapping_save,
    style_preset,
)

_modules = (
    generate, style_preset, export_bvh, mapping_detect, mapping_mirror, mapping_clear, mapping_save, mapping_load,
)


def register() -> None:
    for module in _modules:
        module.register()


def unregister() -> None:
    for module in reversed(_modules):
        module.unregister()
