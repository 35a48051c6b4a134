"""Add-on preferences (Edit > Preferences > Add-ons > Gestura)."""

import os

import bpy
from bpy.props import StringProperty

_PACKAGE = __package__ or __name__.rpartition(".")[0]  # the extension's package: bl_ext.<repo>.gestura in Blender


class GESTURA_AP_preferences(bpy.types.AddonPreferences):
    bl_idname = _PACKAGE

    model_python: StringProperty(  # type: ignore[valid-type]
        name="Python for the model",
        subtype="FILE_PATH",
        description=(
            "Python interpreter that runs the gesture model in its own process (empty: Blender's own Python). "
            "The Diffusion engine needs PyTorch in it"
        ),
    )

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        layout.prop(self, "model_python")
        col = layout.column(align=True)
        col.label(text="Generation runs in a separate process with this Python, so Blender stays responsive.")
        col.label(text="Empty: Blender's own Python. The Diffusion engine needs PyTorch (torch) installed there;")
        col.label(text="the Rule-based engine needs nothing more. A Python of another version needs Gestura's")
        col.label(text="packages (numpy, soundfile, librosa, ...) installed in it as well.")


def model_python(context: bpy.types.Context) -> str:
    """The 'Python for the model' preference as an absolute path ("" when unset, or when the add-on is not
    enabled through the preferences, as in scripts that call register() themselves)."""
    preferences = context.preferences
    addon = preferences.addons.get(_PACKAGE) if preferences is not None else None
    prefs = getattr(addon, "preferences", None) if addon is not None else None
    value = (getattr(prefs, "model_python", "") or "").strip()
    return os.path.expanduser(bpy.path.abspath(value)) if value else ""


def register() -> None:
    bpy.utils.register_class(GESTURA_AP_preferences)


def unregister() -> None:
    bpy.utils.unregister_class(GESTURA_AP_preferences)
