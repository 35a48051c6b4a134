"""Gestura's inference worker: the process that runs the model (see worker_client.py for the protocol).

    python <extension>/inference/worker.py

Started by WorkerClient with the "Python for the model" (Blender's own by default). It loads the
extension's ``inference`` package from this folder without importing bpy and without running the
extension's ``__init__`` (whose register() is Blender's business), answers "ready", then runs one
request at a time through ``inference.pipeline.generate`` and streams progress and the result. Loaded
models stay cached in this process between jobs. It leaves when its stdin closes (Blender quit, or the
client shut it down); cancel kills it.
"""

import os
import sys

# The folder of a script run as `python worker.py` is put first on sys.path (unless PYTHONSAFEPATH is set):
# drop it, so that this folder's modules are only ever imported as parts of the package.
_HERE = os.path.dirname(os.path.abspath(__file__))
if sys.path and os.path.abspath(sys.path[0] or os.curdir) == _HERE:
    del sys.path[0]

import importlib  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import queue  # noqa: E402
import signal  # noqa: E402
import struct  # noqa: E402
import threading  # noqa: E402
import traceback  # noqa: E402
import types  # noqa: E402
import typing  # noqa: E402

PACKAGE = "gestura"  # the name the extension folder gets inside this process
MAGIC = b"GSTW"
EXIT_FATAL = 3
EXIT_PROTOCOL = 4


def _protocol_streams() -> tuple[typing.BinaryIO, typing.BinaryIO]:
    """Private copies of stdin/stdout for the protocol; file descriptors 0 and 1 then point to /dev/null and
    stderr, so that a library printing to stdout (Python or C level) cannot corrupt a frame."""
    proto_in = os.fdopen(os.dup(0), "rb")
    proto_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    return proto_in, proto_out


def _send_header_only(stream: typing.BinaryIO, header: dict) -> None:
    """A frame without arrays, with the standard library only (for "fatal", before numpy is known to work)."""
    data = json.dumps({**header, "arrays": []}).encode("utf-8")
    stream.write(MAGIC + struct.pack("<I", len(data)) + data)
    stream.flush()


def _extend_sys_path() -> None:
    """Folders the client asked for (Blender's own sys.path: the extension's bundled wheels), appended after this
    Python's own, and only when it is the same Python version (compiled wheels are per version)."""
    wanted = os.environ.get("GESTURA_WORKER_SYS_PATH")
    parent_version = os.environ.get("GESTURA_WORKER_PARENT_VERSION", "")
    if not wanted or parent_version != "{}.{}".format(*sys.version_info[:2]):
        return
    for path in json.loads(wanted):
        if path and path not in sys.path and os.path.abspath(path) != _HERE and os.path.isdir(path):
            sys.path.append(path)


def _load_package() -> types.ModuleType:
    """The extension folder as the package PACKAGE, without executing its __init__.py (no bpy, no register)."""
    root = os.path.dirname(_HERE)
    package = types.ModuleType(PACKAGE, "Gestura (inference worker)")
    package.__path__ = [root]
    package.__package__ = PACKAGE
    sys.modules[PACKAGE] = package
    return package


def _missing_module_message(name: str, hint: str) -> str:
    return (
        f"The Python that runs the model ({sys.executable}, Python {sys.version.split()[0]}) lacks the module "
        f"{name!r}. Install it into that Python, or choose another one: {hint}."
    )


class Worker:
    def __init__(self, proto_out: typing.BinaryIO, client_module: types.ModuleType) -> None:
        self.out = proto_out
        self.wc = client_module
        self.lock = threading.Lock()
        self.pipeline = importlib.import_module(f"{PACKAGE}.inference.pipeline")
        self.errors = importlib.import_module(f"{PACKAGE}.inference.errors")

    def send(self, header: dict, arrays: typing.Sequence = ()) -> None:
        with self.lock:
            self.wc.write_frame(self.out, header, arrays)

    def error_class(self, exc: BaseException) -> str:
        known = {getattr(self.errors, name) for name in self.wc.ERROR_CLASSES}
        for cls in type(exc).__mro__:
            if cls in known:
                return cls.__name__
        return type(exc).__name__

    def run_job(self, header: dict, arrays: list) -> None:
        job = header.get("job")

        def progress(fraction: float, text: str) -> None:
            self.send({"type": "progress", "job": job, "fraction": float(fraction), "text": str(text)})

        try:
            request = self.wc.request_from_plain(header["request"], arrays)
            result = self.pipeline.generate(request, progress)
            out_arrays: list = []
            plain = self.wc.result_to_plain(result, out_arrays)
            self.send({"type": "result", "job": job, "result": plain}, out_arrays)
            return
        except self.pipeline.MissingTorchError as exc:
            error_class, message = "InputError", f"{exc} Or: {self.wc.PREFERENCE_HINT}."
        except ModuleNotFoundError as exc:
            if exc.name and (exc.name == PACKAGE or exc.name.startswith(PACKAGE + ".")):
                error_class, message = type(exc).__name__, str(exc)  # a part of Gestura itself is missing: a bug
            else:
                error_class, message = "InputError", _missing_module_message(exc.name or str(exc),
                                                                              self.wc.PREFERENCE_HINT)
        except Exception as exc:  # noqa: BLE001 - every failure goes back to the client as a message
            error_class, message = self.error_class(exc), str(exc) or type(exc).__name__
        self.send({"type": "error", "job": job, "error_class": error_class, "message": message,
                   "traceback": traceback.format_exc()})


def _read_requests(proto_in: typing.BinaryIO, client_module: types.ModuleType, jobs: queue.Queue) -> None:
    """Reads requests; the end of stdin (Blender quit, or shutdown) ends the process at once, even mid-job."""
    try:
        while True:
            frame = client_module.read_frame(proto_in)
            if frame is None or frame[0].get("type") == "shutdown":
                os._exit(0)
            jobs.put(frame)
    except Exception as exc:  # noqa: BLE001
        print(f"gestura worker: unreadable request: {exc}", file=sys.stderr, flush=True)
        os._exit(EXIT_PROTOCOL)


def main() -> int:
    if hasattr(signal, "SIGINT"):
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the client decides when this process ends
    proto_in, proto_out = _protocol_streams()
    try:
        _extend_sys_path()
        _load_package()
        client_module = importlib.import_module(f"{PACKAGE}.inference.worker_client")
        worker = Worker(proto_out, client_module)
    except BaseException as exc:  # noqa: BLE001 - told to the client, then this process ends
        traceback.print_exc()
        if isinstance(exc, ModuleNotFoundError) and exc.name:
            message = (f"Python {sys.version.split()[0]} has no module {exc.name!r} "
                       "(Gestura's worker needs numpy and the extension's bundled packages)")
        else:
            message = f"{type(exc).__name__}: {exc} (Python {sys.version.split()[0]})"
        _send_header_only(proto_out, {"type": "fatal", "message": message})
        return EXIT_FATAL

    worker.send({
        "type": "ready",
        "pid": os.getpid(),
        "python": sys.executable,
        "version": sys.version.split()[0],
        "torch": importlib.util.find_spec("torch") is not None,
        # What this process has loaded so far: no bpy, no torch, and not the extension's __init__ (register).
        "loaded": {"bpy": "bpy" in sys.modules, "torch": "torch" in sys.modules,
                   "extension_init": hasattr(sys.modules[PACKAGE], "register")},
    })
    jobs: queue.Queue = queue.Queue()
    threading.Thread(target=_read_requests, args=(proto_in, client_module, jobs), daemon=True).start()
    while True:
        header, arrays = jobs.get()
        if header.get("type") == "generate":
            worker.run_job(header, arrays)


if __name__ == "__main__":
    sys.exit(main())
