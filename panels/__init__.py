"""Panels: UI only; they draw settings and call operators."""

from . import gesture_panel, keys_panel, mapping_panel

_modules = (gesture_panel, mapping_panel, keys_panel)


def register() -> None:
    for module in _modules:
        module.register()


def unregister() -> None:
    for module in reversed(_modules):
        module.unregister()
