"""Operators: thin bpy layers over inference/ and retarget/. One operator per module."""

from . import export_bvh, generate, style_preset

_modules = (generate, style_preset, export_bvh)


def register() -> None:
    for module in _modules:
        module.register()


def unregister() -> None:
    for module in reversed(_modules):
        module.unregister()
