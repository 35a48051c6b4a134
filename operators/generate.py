"""Generate Gestures: speech on the chosen rig as a new action, one undo step.

In the UI the operator is modal: the model runs in the worker process (inference/worker.py), a window-manager
timer polls it, the panel and the status bar show progress, Esc (or the Cancel button) kills the worker at
once and nothing is written; when the motion arrives it is keyed on the rig here, on the main thread.
In background mode (``blender -b``, the bpy module) there are no timers or modal operators: the same core
runs synchronously in this process. Scripts that call the operator in the UI (EXEC_DEFAULT) wait for the
worker.
"""

import sys
from typing import Any

import bpy
from bpy.app.handlers import persistent

from ..inference.errors import GesturaError

TIMER_STEP_S = 0.05


class _State:
    client: Any = None  # the shared WorkerClient: one persistent model process (models stay loaded between jobs)
    active: Any = None  # the GenerationJob the modal operator runs, if any


_state = _State()


def shared_client(python: str):
    """The worker client for this 'Python for the model' (a new process when the preference changed)."""
    from ..inference.worker_client import WorkerClient

    wanted = python.strip() or sys.executable
    if _state.client is not None and _state.client.python != wanted:
        _state.client.shutdown()
        _state.client = None
    if _state.client is None:
        _state.client = WorkerClient(wanted)
    return _state.client


def active_job():
    return _state.active


@persistent
def _on_load_pre(*_args) -> None:
    """A file is being loaded: stop the running generation (its rig may not exist in the next file). The modal
    operator, if Blender keeps it, sees the job cancelled at its next tick."""
    job, _state.active = _state.active, None
    if job is not None:
        job.cancel()
        state = getattr(bpy.context.window_manager, "gestura_job", None)
        if state is not None:
            state.running = False


def _model_python(context) -> str:
    from ..preferences import model_python

    return model_python(context)


def _tag_redraw(context) -> None:
    wm = context.window_manager
    for window in wm.windows:
        screen = window.screen
        if screen is None:
            continue
        for area in screen.areas:
            if area.type in {"VIEW_3D", "PROPERTIES", "SEQUENCE_EDITOR"}:
                area.tag_redraw()


def _show_progress(context, job, running: bool = True) -> None:
    state = context.window_manager.gestura_job
    text = job.text if job is not None else ""
    fraction = job.fraction if job is not None else 0.0
    if state.running != running or abs(state.progress - fraction) > 1e-4 or state.text != text:
        # Setting window-manager properties also redraws the status bar (its progress is drawn from them).
        state.running, state.progress, state.text = running, fraction, text
        _tag_redraw(context)


def _settings_of(job, context):
    """The settings of the scene the job was started from (it may not be the active one any more)."""
    uid = job.prepared.scene_uid if job is not None and job.prepared is not None else None
    for scene in bpy.data.scenes:
        if scene.session_uid == uid:
            return getattr(scene, "gestura")  # noqa: B009 - registered at run time: the stubs do not know it
    return context.scene.gestura


class GESTURA_OT_generate(bpy.types.Operator):
    """Generate co-speech gestures for the selected rig from the chosen speech"""

    bl_idname = "gestura.generate"
    bl_label = "Generate Gestures"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        settings = getattr(context.scene, "gestura", None)
        if settings is None:
            return False
        if _state.active is not None:
            cls.poll_message_set("Gestures are being generated: wait, or cancel (Esc)")
            return False
        if settings.rig is None or settings.rig.type != "ARMATURE":
            cls.poll_message_set("Pick an armature as the rig")
            return False
        if settings.audio_source == "STRIP" and not settings.sound_strip:
            cls.poll_message_set("Pick a sound strip")
            return False
        if settings.audio_source == "FILE" and not settings.audio_file:
            cls.poll_message_set("Pick an audio file")
            return False
        return True

    # -- synchronous: background mode, scripts, redo --------------------------------------------------------
    def execute(self, context):
        from .scene_inputs import GenerationJob, generate_on_rig

        settings = context.scene.gestura
        try:
            if bpy.app.background:
                summary = generate_on_rig(context.scene, settings)
            else:
                job = GenerationJob(shared_client(_model_python(context)))
                job.start(context.scene, settings)
                job.wait()
                summary = job.finish()
        except GesturaError as err:
            return self._failed(settings, err)
        return self._finished(settings, summary)

    # -- modal: the UI --------------------------------------------------------------------------------------
    def invoke(self, context, event):
        if bpy.app.background:
            return self.execute(context)
        from .scene_inputs import GenerationJob

        settings = context.scene.gestura
        job = GenerationJob(shared_client(_model_python(context)))
        try:
            job.start(context.scene, settings)
        except GesturaError as err:
            return self._failed(settings, err)
        _state.active = self._job = job
        wm = context.window_manager
        self._timer = wm.event_timer_add(TIMER_STEP_S, window=context.window)
        wm.modal_handler_add(self)
        settings.status = ""
        _show_progress(context, job)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        job = self._job
        if event.type == "ESC" and event.value == "PRESS":
            job.cancel()
        elif event.type != "TIMER" and job.state == "running":
            return {"PASS_THROUGH"}  # the user keeps working
        state = job.poll()
        if state == "running":
            _show_progress(context, job)
            return {"PASS_THROUGH"}
        settings = _settings_of(job, context)
        self._stop(context)
        if state == "cancelled":
            settings.status = "Cancelled: nothing was written"
            self.report({"INFO"}, "Gestura: generation cancelled, nothing was written")
            return {"CANCELLED"}
        try:
            summary = job.finish()  # keys land here, on the main thread; FINISHED makes it one undo step
        except Exception as err:  # noqa: BLE001 - any failure is reported, and nothing was written
            return self._failed(settings, err)
        return self._finished(settings, summary)

    def cancel(self, context):
        """Blender ends the operator (a file is loaded, the window closes): stop the worker's job."""
        job = getattr(self, "_job", None)
        if job is not None:
            job.cancel()
        self._stop(context)

    def _stop(self, context) -> None:
        timer = getattr(self, "_timer", None)
        if timer is not None:
            context.window_manager.event_timer_remove(timer)
            self._timer = None
        if _state.active is getattr(self, "_job", None):
            _state.active = None
        _show_progress(context, None, running=False)

    # -- reports --------------------------------------------------------------------------------------------
    def _failed(self, settings, err: BaseException):
        message = str(err) or type(err).__name__
        settings.status = message.splitlines()[0]
        self.report({"ERROR"}, message)
        return {"CANCELLED"}

    def _finished(self, settings, summary: dict):
        for warning in summary["warnings"]:
            self.report({"WARNING"}, warning)
        settings.status = (
            f"{summary['action']}: {summary['frames']} frames on {summary['mapped_bones']} bones, "
            f"{summary['words']} words"
        )
        self.report({"INFO"}, f"Gestura: {settings.status}")
        return {"FINISHED"}


class GESTURA_OT_cancel_generation(bpy.types.Operator):
    """Stop the running generation now (nothing is written)"""

    bl_idname = "gestura.cancel_generation"
    bl_label = "Cancel"
    bl_options = {"INTERNAL"}

    @classmethod
    def poll(cls, context):
        return _state.active is not None

    def execute(self, context):
        if _state.active is not None:
            _state.active.cancel()  # the modal operator notices at its next timer tick and cleans up
        return {"FINISHED"}


_classes = (GESTURA_OT_generate, GESTURA_OT_cancel_generation)


def register() -> None:
    for cls in _classes:
        bpy.utils.register_class(cls)
    bpy.app.handlers.load_pre.append(_on_load_pre)


def unregister() -> None:
    if _on_load_pre in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.remove(_on_load_pre)
    if _state.active is not None:
        _state.active.cancel()
        _state.active = None
    if _state.client is not None:
        _state.client.shutdown()
        _state.client = None
    for cls in reversed(_classes):
        bpy.utils.unregister_class(cls)
