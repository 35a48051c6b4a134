"""Errors the user can act on. Their messages are shown as they are in Blender's report()."""


class GesturaError(Exception):
    """Base class: a problem the user can fix, with a message that says how."""


class InputError(GesturaError):
    """Bad or missing input: audio, transcript, style prompt or settings."""


class RigError(GesturaError):
    """The rig cannot take the motion (no armature, unknown bone names, ...)."""


class CancelledError(GesturaError):
    """The user cancelled a running generation."""
