"""The inference worker process, seen from Blender's side (no bpy, no torch).

Generation runs in a persistent child process (``python <extension>/inference/worker.py``), so Blender
never freezes, a crash or out-of-memory in the model leaves Blender running, cancel is immediate (the
process is killed, and a new one starts lazily with the next job), and loaded models stay in memory
between jobs.

Protocol, both directions, over the child's stdin and stdout pipes: a sequence of frames

    b"GSTW" | uint32 little-endian n | n bytes of UTF-8 JSON header | the header's arrays, one after another

The header's "arrays" list holds the byte length of each array, each serialized with
``np.save(..., allow_pickle=False)`` (never pickle: nothing that crosses can run code). Values in a header
are plain JSON, with three tagged forms: ``{"$nd": i}`` (the i-th array of the frame), ``{"$tuple": [...]}``
and ``{"$items": [[key, value], ...]}`` (a dict whose keys are not plain strings).

Client -> worker: ``{"type": "generate", "job": id, "request": <GenerationRequest as plain values>}``,
``{"type": "shutdown"}`` (closing stdin does the same).
Worker -> client: ``ready`` (once, with its Python and whether torch is importable), ``progress``
(job, fraction, text), ``result`` (job and the GenerationResult: motion arrays, meta, words, style
explanation, warnings, timings), ``error`` (job, error_class, message, traceback), and ``fatal`` (it
could not start, message; then it exits).

The worker's stray prints go to its stderr, never into the protocol; the client keeps the tail of its
stderr for the message when it dies.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import io
import json
import os
import queue
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from .errors import CancelledError, GesturaError, InputError, RigError
from .motion import CanonicalMotion
from .pipeline import EngineOptions, GenerationRequest, GenerationResult

MAGIC = b"GSTW"
WORKER_SCRIPT = Path(__file__).resolve().with_name("worker.py")
PREFERENCE_HINT = (
    "Edit > Preferences > Add-ons > Gestura > 'Python for the model' picks the Python that runs the model "
    "(empty: Blender's own)"
)
# Error classes that cross by name and are raised again on this side as the same class.
ERROR_CLASSES: dict[str, type[GesturaError]] = {
    "CancelledError": CancelledError,
    "InputError": InputError,
    "RigError": RigError,
    "GesturaError": GesturaError,
}
STDERR_TAIL_LINES = 40


class ProtocolError(Exception):
    """A frame that does not follow the protocol (something else wrote to the pipe, or it was cut)."""


class WorkerError(GesturaError):
    """The worker process failed as a process: it could not start, or it died."""


class WorkerStartError(WorkerError):
    """The Python for the model cannot be started, or cannot run Gestura's worker."""


class WorkerCrashedError(WorkerError):
    """The worker process ended in the middle of a job (crash, out of memory, killed from outside)."""


class WorkerJobError(RuntimeError):
    """An unexpected error (a bug, not a user error) inside the worker; carries the worker's traceback."""

    def __init__(self, message: str, error_class: str = "", remote_traceback: str = "") -> None:
        super().__init__(message)
        self.error_class = error_class
        self.remote_traceback = remote_traceback


# ----------------------------------------------------------------------------------------------------------------
# Values and frames


def to_plain(value: Any, arrays: list[np.ndarray]) -> Any:
    """A JSON-ready copy of `value` with its numpy arrays moved to `arrays` (see the module docstring)."""
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise TypeError("numpy arrays of Python objects cannot cross the worker boundary")
        arrays.append(value)
        return {"$nd": len(arrays) - 1}
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list):
        return [to_plain(v, arrays) for v in value]
    if isinstance(value, tuple):
        return {"$tuple": [to_plain(v, arrays) for v in value]}
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("$") for k in value):
            return {k: to_plain(v, arrays) for k, v in value.items()}
        return {"$items": [[to_plain(k, arrays), to_plain(v, arrays)] for k, v in value.items()]}
    raise TypeError(
        f"A {type(value).__name__} cannot cross the worker boundary: only numpy arrays and plain values "
        "(None, bool, int, float, str, list, tuple, dict) do"
    )


def from_plain(value: Any, arrays: Sequence[np.ndarray]) -> Any:
    if isinstance(value, list):
        return [from_plain(v, arrays) for v in value]
    if isinstance(value, dict):
        if len(value) == 1:
            ((key, inner),) = value.items()
            if key == "$nd":
                return arrays[inner]
            if key == "$tuple":
                return tuple(from_plain(v, arrays) for v in inner)
            if key == "$items":
                return {from_plain(k, arrays): from_plain(v, arrays) for k, v in inner}
        return {k: from_plain(v, arrays) for k, v in value.items()}
    return value


def write_frame(stream: IO[bytes], header: dict, arrays: Sequence[np.ndarray] = ()) -> None:
    blobs = []
    for array in arrays:
        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
        blobs.append(buffer.getvalue())
    data = json.dumps({**header, "arrays": [len(b) for b in blobs]}).encode("utf-8")
    stream.write(MAGIC + struct.pack("<I", len(data)) + data + b"".join(blobs))
    stream.flush()


def _read_exact(stream: IO[bytes], n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = stream.read(n - got)
        if not chunk:
            raise ProtocolError(f"the stream ended inside a frame ({got} of {n} bytes)")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def read_frame(stream: IO[bytes]) -> tuple[dict, list[np.ndarray]] | None:
    """The next frame's header and arrays, or None at the end of the stream (between frames)."""
    first = stream.read(1)
    if not first:
        return None
    head = first + _read_exact(stream, 7)
    if head[:4] != MAGIC:
        raise ProtocolError(f"unexpected bytes on the protocol pipe: {head!r}")
    (size,) = struct.unpack("<I", head[4:])
    header = json.loads(_read_exact(stream, size).decode("utf-8"))
    arrays = [np.load(io.BytesIO(_read_exact(stream, n)), allow_pickle=False) for n in header.pop("arrays", [])]
    return header, arrays


# ----------------------------------------------------------------------------------------------------------------
# Requests and results as plain values


def request_to_plain(request: GenerationRequest, arrays: list[np.ndarray]) -> Any:
    return to_plain(dataclasses.asdict(request), arrays)


def request_from_plain(value: Any, arrays: Sequence[np.ndarray]) -> GenerationRequest:
    fields = dict(from_plain(value, arrays))
    options = EngineOptions(**fields.pop("options", {}))
    return GenerationRequest(**fields, options=options)


def _word_to_plain(word: Any) -> Any:
    if dataclasses.is_dataclass(word) and not isinstance(word, type):
        return {"$word": dataclasses.asdict(word)}
    return word


def result_to_plain(result: GenerationResult, arrays: list[np.ndarray]) -> Any:
    motion = result.motion
    return to_plain(
        {
            "motion": {"rotations": motion.rotations, "root": motion.root, "fps": motion.fps, "meta": motion.meta},
            "words": [_word_to_plain(w) for w in result.words],
            "style_explanation": result.style_explanation,
            "warnings": list(result.warnings),
            "timings": dict(result.timings),
        },
        arrays,
    )


def result_from_plain(value: Any, arrays: Sequence[np.ndarray]) -> GenerationResult:
    from .transcript import Word

    plain = from_plain(value, arrays)
    m = plain["motion"]
    words = [Word(**w["$word"]) if isinstance(w, dict) and "$word" in w else w for w in plain["words"]]
    return GenerationResult(
        CanonicalMotion(m["rotations"], m["root"], m["fps"], m["meta"]),
        words,
        plain["style_explanation"],
        plain["warnings"],
        plain["timings"],
    )


def error_from_header(header: dict) -> BaseException:
    """The exception a worker's "error" frame stands for, as raised on this side."""
    message = header.get("message") or header.get("error_class") or "unknown error"
    cls = ERROR_CLASSES.get(header.get("error_class", ""))
    if cls is not None:
        return cls(message)
    return WorkerJobError(
        f"{header.get('error_class', 'Error')} in the model process: {message}",
        header.get("error_class", ""),
        header.get("traceback", ""),
    )


# ----------------------------------------------------------------------------------------------------------------
# Events a poll returns


@dataclass
class ProgressEvent:
    job: int
    fraction: float
    text: str


@dataclass
class ResultEvent:
    job: int
    result: GenerationResult


@dataclass
class ErrorEvent:
    job: int
    error: BaseException


Event = ProgressEvent | ResultEvent | ErrorEvent


# ----------------------------------------------------------------------------------------------------------------
# The client


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


class _Process:
    """One worker process with its reader threads. Its messages go to its own queue, so nothing a killed
    process still had in its pipe reaches the next one."""

    def __init__(self, python: str, env: dict[str, str], echo_stderr: bool) -> None:
        self.events: queue.Queue = queue.Queue()
        self.stderr_tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        self.info: dict = {}
        self.fatal: str = ""
        kwargs: dict[str, Any] = {}
        if os.name == "nt":
            kwargs["creationflags"] = getattr(subprocess, "CREATE_NO_WINDOW", 0)
        else:
            kwargs["start_new_session"] = True  # Ctrl+C in Blender's terminal is not for the worker
        self.proc = subprocess.Popen(  # noqa: S603 - the command is the chosen Python and our own script
            [python, str(WORKER_SCRIPT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            **kwargs,
        )
        self._echo = echo_stderr
        self._stderr_thread = threading.Thread(target=self._read_stderr, name="gestura-worker-stderr", daemon=True)
        self._stderr_thread.start()
        threading.Thread(target=self._read_stdout, name="gestura-worker-stdout", daemon=True).start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def send(self, header: dict, arrays: Sequence[np.ndarray] = ()) -> bool:
        try:
            assert self.proc.stdin is not None
            write_frame(self.proc.stdin, header, arrays)
            return True
        except (OSError, ValueError):  # the process is gone: its stdout reader reports how it ended
            return False

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            self.stderr_tail.append(line)
            if self._echo:
                print(f"[gestura worker] {line}", file=sys.stderr)

    def _read_stdout(self) -> None:
        """Reads and decodes frames (decoding arrays here keeps the main thread's poll cheap)."""
        assert self.proc.stdout is not None
        try:
            while True:
                frame = read_frame(self.proc.stdout)
                if frame is None:
                    break
                header, arrays = frame
                if header.get("type") == "result":
                    try:
                        header["result"] = result_from_plain(header["result"], arrays)
                    except Exception as exc:  # noqa: BLE001 - reported as the job's error
                        header = {"type": "error", "job": header.get("job"), "error_class": type(exc).__name__,
                                  "message": f"cannot read the worker's result: {exc}"}
                self.events.put(("frame", header, arrays))
        except (ProtocolError, OSError, ValueError) as exc:
            self.events.put(("protocol", str(exc)))
            self.kill()
        code = self.proc.wait()
        self._stderr_thread.join(timeout=2.0)
        self.events.put(("exit", code))

    def kill(self) -> None:
        if self.proc.poll() is not None:
            return
        with contextlib.suppress(OSError):
            if os.name != "nt":
                os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: takes any children along
            else:
                self.proc.kill()
        with contextlib.suppress(OSError):
            self.proc.kill()

    def close_pipes(self) -> None:
        for stream in (self.proc.stdin,):
            with contextlib.suppress(OSError, ValueError):
                if stream is not None:
                    stream.close()


_LIVE: weakref.WeakSet[WorkerClient] = weakref.WeakSet()


@atexit.register
def _kill_all_workers() -> None:
    for client in list(_LIVE):
        client.cancel()


class WorkerClient:
    """A persistent worker process: submit() one request at a time, poll() for its events (never blocks),
    cancel() kills the process at once; the next submit() starts a new one.

    python: the interpreter that runs the model (None or "": this Python, which is Blender's own inside
    Blender). extra_sys_path: folders the worker appends to its sys.path when it runs the same Python
    version (by default this process's sys.path, so Blender's Python sees the extension's bundled wheels).
    """

    def __init__(
        self,
        python: str | None = None,
        *,
        extra_sys_path: Sequence[str] | None = None,
        env: dict[str, str] | None = None,
        echo_stderr: bool = False,
    ) -> None:
        self.python = (python or "").strip() or sys.executable
        self.extra_sys_path = list(sys.path if extra_sys_path is None else extra_sys_path)
        self.env_overrides = dict(env or {})
        self.echo_stderr = echo_stderr
        self._process: _Process | None = None
        self._job: int | None = None
        self._next_job = 1
        self.spawn_count = 0
        _LIVE.add(self)

    # -- state -------------------------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self._job is not None

    @property
    def current_job(self) -> int | None:
        return self._job

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None and self._process.alive() else None

    @property
    def info(self) -> dict:
        """What the worker said when it was ready (its Python, version, whether torch is importable)."""
        return dict(self._process.info) if self._process is not None else {}

    def alive(self) -> bool:
        return self._process is not None and self._process.alive()

    # -- process ------------------------------------------------------------------------------------------------
    def _resolved_python(self) -> str:
        python = os.path.expanduser(self.python)
        if os.sep not in python and (os.altsep is None or os.altsep not in python):
            found = shutil.which(python)
            if found:
                return found
        if not os.path.isfile(python):
            raise WorkerStartError(
                f"The Python for the model was not found: {python}. {PREFERENCE_HINT}."
            )
        return python

    def start(self) -> None:
        """Starts the worker process unless one is running (submit() does this itself)."""
        if self.alive():
            return
        self._drop_process()
        python = self._resolved_python()
        env = dict(os.environ)
        env.update(
            PYTHONSAFEPATH="1",  # never put the script's folder (inference/) first on the worker's sys.path
            PYTHONUNBUFFERED="1",
            PYTHONIOENCODING="utf-8",
            GESTURA_WORKER_SYS_PATH=json.dumps([p for p in self.extra_sys_path if p]),
            GESTURA_WORKER_PARENT_VERSION="{}.{}".format(*sys.version_info[:2]),
        )
        env.update(self.env_overrides)
        try:
            self._process = _Process(python, env, self.echo_stderr)
        except OSError as exc:
            raise WorkerStartError(
                f"Cannot start the Python for the model ({python}): {exc}. {PREFERENCE_HINT}."
            ) from exc
        self.spawn_count += 1

    def _drop_process(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.close_pipes()
        self._process = None

    # -- jobs ---------------------------------------------------------------------------------------------------
    def submit(self, request: GenerationRequest) -> int:
        if self._job is not None:
            raise RuntimeError("The worker is busy with another job: cancel it or wait for it")
        arrays: list[np.ndarray] = []
        plain = request_to_plain(request, arrays)
        self.start()
        assert self._process is not None
        job = self._next_job
        self._next_job += 1
        self._job = job
        # A process that is already gone is reported by poll() as a crash of this job.
        self._process.send({"type": "generate", "job": job, "request": plain}, arrays)
        return job

    def poll(self, timeout: float = 0.0) -> list[Event]:
        """The events that arrived since the last call; never blocks unless `timeout` > 0 (then it waits up
        to that long for the first one). A job ends with exactly one ResultEvent or ErrorEvent."""
        process = self._process
        if process is None:
            return []
        events: list[Event] = []
        block = timeout > 0
        while True:
            try:
                item = process.events.get(timeout=timeout) if block else process.events.get_nowait()
            except queue.Empty:
                break
            block = False
            event = self._translate(process, item)
            if event is not None:
                events.append(event)
            if self._process is not process:  # the process ended: what is left of it is of no use
                break
        return events

    def _translate(self, process: _Process, item: tuple) -> Event | None:
        kind = item[0]
        job = self._job
        if kind == "frame":
            header = item[1]
            mtype = header.get("type")
            if mtype == "ready":
                process.info = header
                return None
            if mtype == "fatal":
                process.fatal = header.get("message", "")
                return None
            if job is None or header.get("job") != job:
                return None  # a job this client no longer waits for
            if mtype == "progress":
                return ProgressEvent(job, float(header.get("fraction", 0.0)), str(header.get("text", "")))
            if mtype == "result":
                self._job = None
                return ResultEvent(job, header["result"])
            if mtype == "error":
                self._job = None
                return ErrorEvent(job, error_from_header(header))
            return None
        if kind == "protocol":
            process.fatal = process.fatal or f"the worker broke the protocol ({item[1]})"
            return None
        # kind == "exit": the process ended
        self._process = None
        process.close_pipes()
        if job is None:
            return None
        self._job = None
        return ErrorEvent(job, self._death_error(process, item[1]))

    def _death_error(self, process: _Process, code: int) -> WorkerError:
        tail = "\n".join(process.stderr_tail).strip()
        tail_text = f"\nLast lines of its error output:\n{tail}" if tail else " (it wrote no error output)"
        if process.fatal:
            return WorkerStartError(
                f"The Python for the model ({self.python}) cannot run Gestura's worker: {process.fatal}. "
                f"{PREFERENCE_HINT}.{tail_text}"
            )
        how = f"exit code {code}" if code >= 0 else f"exit code {code}, killed by {_signal_name(code)}"
        hint = " (out of memory?)" if code < 0 and -code == getattr(signal, "SIGKILL", 9) else ""
        return WorkerCrashedError(
            f"The model process stopped unexpectedly ({how}){hint}; Blender is fine, generate again to start "
            f"a new one.{tail_text}"
        )

    def cancel(self) -> None:
        """Stops the running job at once by killing the process (a new one starts with the next job)."""
        self._job = None
        self._drop_process()

    def shutdown(self, timeout: float = 2.0) -> None:
        """Ends the worker: politely (it leaves when its stdin closes), then by force after `timeout`."""
        process, self._process, self._job = self._process, None, None
        if process is None:
            return
        process.send({"type": "shutdown"})
        process.close_pipes()
        try:
            process.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()

    # -- blocking use (scripts, tests, benchmarks) ---------------------------------------------------------------
    def generate(
        self,
        request: GenerationRequest,
        progress: Callable[[float, str], bool | None] | None = None,
        timeout: float | None = None,
    ) -> GenerationResult:
        """Runs one request to the end. `progress` returning False cancels (CancelledError)."""
        job = self.submit(request)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            for event in self.poll(timeout=0.1):
                if isinstance(event, ProgressEvent):
                    if progress is not None and progress(event.fraction, event.text) is False:
                        self.cancel()
                        raise CancelledError("Generation cancelled")
                elif isinstance(event, ResultEvent):
                    return event.result
                elif isinstance(event, ErrorEvent):
                    raise event.error
            if self._job != job:  # the process vanished without a word (cancelled from elsewhere)
                raise CancelledError("Generation cancelled")
            if deadline is not None and time.monotonic() > deadline:
                self.cancel()
                raise TimeoutError(f"The model process did not finish within {timeout} s")
