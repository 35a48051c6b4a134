"""Gestura: speech in, stylized editable co-speech gesture animation on your own rig.

Blender imports this package at start-up, so nothing heavy happens at import time: bpy classes are
imported inside register(), and torch is never imported here.
"""

_registered_modules: list = []


def register() -> None:
    from . import key_properties, mapping_properties, operators, panels, preferences, properties

    for module in (preferences, properties, key_properties, mapping_properties, operators, panels):
        module.register()
        _registered_modules.append(module)


def unregister() -> None:
    while _registered_modules:
        _registered_modules.pop().unregister()
