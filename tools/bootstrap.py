#!/usr/bin/env python3
"""Sets up Gestura's development environments and runs the project's entry points.

Standard library only, so a fresh ``python3`` (3.11, the Python of Blender 4.5 and 5.0) can run it::

    python3 tools/bootstrap.py setup          # create/refresh .venv (bpy 5.0.1) and .venv-bpy45 (bpy 4.5 LTS)
    python3 tools/bootstrap.py test [ARGS]    # ruff, mypy, pytest tests (bpy 5.0), pytest tests/integration (bpy 4.5)
    python3 tools/bootstrap.py demo [ARGS]    # .venv/bin/python tools/demo.py ARGS

Each venv is built from the pinned files in ``requirements/``. A stamp file inside the venv holds a hash of
those files (and of the interpreter version), so a second run with unchanged pins does no work. When the
pins change, the venv is rebuilt from scratch so that it never holds packages the pins no longer name.
Extra arguments after ``test`` go to both pytest runs (for example ``-k audio`` or ``-x``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = ROOT / "requirements"
CACHE = ROOT / ".cache"
STAMP_NAME = ".gestura-bootstrap-stamp"
# Bump to force every venv to be rebuilt (for example after changing how venvs are made).
BOOTSTRAP_SCHEMA = "1"
PYTHON_VERSION = (3, 11)

# venv folder -> requirement files installed into it (``-r`` includes inside them are followed).
VENVS: dict[str, tuple[str, ...]] = {
    ".venv": ("bpy50.txt", "runtime.txt", "dev.txt", "demo.txt", "training.txt", "torch.txt"),
    ".venv-bpy45": ("bpy45.txt", "runtime.txt", "test.txt"),
}
MAIN_VENV = ".venv"
BPY45_VENV = ".venv-bpy45"


# --------------------------------------------------------------------------------------------------------------------
# Helpers


def log(message: str) -> None:
    print(message, flush=True)


def heading(title: str) -> None:
    bar = "=" * 100
    log(f"\n{bar}\n== {title}\n{bar}")


def venv_python(venv: Path) -> Path:
    if os.name == "nt":
        return venv / "Scripts" / "python.exe"
    return venv / "bin" / "python"


def venv_tool(venv: Path, name: str) -> Path:
    if os.name == "nt":
        return venv / "Scripts" / f"{name}.exe"
    return venv / "bin" / name


def ensure_python_311() -> None:
    """bpy wheels exist for CPython 3.11 only: re-run this script under python3.11 when needed."""
    if sys.version_info[:2] == PYTHON_VERSION:
        return
    wanted = "python{}.{}".format(*PYTHON_VERSION)
    if os.environ.get("GESTURA_BOOTSTRAP_REEXEC"):
        sys.exit(f"bootstrap: needs Python {wanted[6:]}, and {wanted} did not provide it")
    found = shutil.which(wanted)
    if not found:
        sys.exit(
            f"bootstrap: Python {wanted[6:]} is required (bpy wheels are cp311 only); this is "
            f"{sys.version.split()[0]} and no {wanted} is on PATH"
        )
    log(f"bootstrap: re-running under {found}")
    env = dict(os.environ, GESTURA_BOOTSTRAP_REEXEC="1")
    sys.exit(subprocess.call([found, *sys.argv], env=env))


def requirement_closure(names: Sequence[str]) -> list[Path]:
    """The requirement files named, plus the ones they include with ``-r``/``-c``, in a stable order."""
    seen: list[Path] = []
    todo = [REQUIREMENTS / name for name in names]
    while todo:
        path = todo.pop(0)
        if path in seen:
            continue
        if not path.is_file():
            sys.exit(f"bootstrap: missing requirement file {path.relative_to(ROOT)}")
        seen.append(path)
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] in ("-r", "-c", "--requirement", "--constraint"):
                todo.append((path.parent / parts[1]).resolve())
    return seen


def stamp_for(venv_name: str) -> str:
    digest = hashlib.sha256()
    digest.update(f"schema={BOOTSTRAP_SCHEMA}\npython={sys.version_info[:3]}\nvenv={venv_name}\n".encode())
    for path in requirement_closure(VENVS[venv_name]):
        digest.update(f"--- {path.name}\n".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def venv_is_current(venv_name: str) -> bool:
    venv = ROOT / venv_name
    stamp = venv / STAMP_NAME
    if not stamp.is_file() or not venv_python(venv).exists():
        return False
    return stamp.read_text().strip() == stamp_for(venv_name)


def create_venv(venv: Path, out) -> None:
    """``python -m venv``; falls back to virtualenv (from PyPI) where ensurepip is missing (Debian)."""
    proc = subprocess.run(
        [sys.executable, "-m", "venv", "--clear", str(venv)], stdout=out, stderr=subprocess.STDOUT, check=False
    )
    if proc.returncode == 0 and venv_python(venv).exists():
        return
    out.write("bootstrap: `python -m venv` failed (no ensurepip?), falling back to virtualenv\n")
    out.flush()
    target = CACHE / "virtualenv"
    if subprocess.run([sys.executable, "-m", "pip", "--version"], stdout=out, stderr=out, check=False).returncode:
        raise RuntimeError(
            f"{sys.executable} has neither a working venv module nor pip: install python3.11-venv (Debian/Ubuntu)"
        )
    if not (target / "virtualenv").is_dir():
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--target", str(target),
             "virtualenv==21.15.7"],
            stdout=out, stderr=subprocess.STDOUT, check=True,
        )
    env = dict(os.environ, PYTHONPATH=str(target))
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run(
        [sys.executable, "-m", "virtualenv", "--python", sys.executable, str(venv)],
        stdout=out, stderr=subprocess.STDOUT, check=True, env=env,
    )


def build_venv(venv_name: str) -> None:
    """Creates ``venv_name`` from scratch and installs its pinned requirements. Output goes to a log file."""
    venv = ROOT / venv_name
    log_dir = CACHE / "bootstrap"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{venv_name.lstrip('.')}.log"
    with open(log_path, "w") as out:
        shutil.rmtree(venv, ignore_errors=True)
        create_venv(venv, out)
        python = str(venv_python(venv))
        cmd = [python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input"]
        for name in VENVS[venv_name]:
            cmd += ["-r", str(REQUIREMENTS / name)]
        out.write("$ " + " ".join(cmd) + "\n")
        out.flush()
        subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=True)
        subprocess.run(
            [python, "-m", "pip", "check", "--disable-pip-version-check"],
            stdout=out, stderr=subprocess.STDOUT, check=True,
        )
    (venv / STAMP_NAME).write_text(stamp_for(venv_name) + "\n")


def setup(venv_names: Sequence[str]) -> None:
    """Brings the named venvs up to date; the stale ones are built in parallel (downloads dominate)."""
    stale = [name for name in venv_names if not venv_is_current(name)]
    for name in venv_names:
        if name not in stale:
            log(f"bootstrap: {name} is up to date")
    if not stale:
        return
    started = time.monotonic()
    errors: dict[str, BaseException] = {}

    def worker(name: str) -> None:
        try:
            build_venv(name)
        except BaseException as exc:  # reported below, with the log
            errors[name] = exc

    threads = []
    for name in stale:
        files = ", ".join(f"requirements/{f}" for f in VENVS[name])
        log(f"bootstrap: building {name} from {files} (log: .cache/bootstrap/{name.lstrip('.')}.log)")
        thread = threading.Thread(target=worker, args=(name,))
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join()
    for name, exc in errors.items():
        log_path = CACHE / "bootstrap" / f"{name.lstrip('.')}.log"
        log(f"bootstrap: FAILED to build {name}: {exc}")
        if log_path.is_file():
            tail = log_path.read_text(errors="replace").splitlines()[-40:]
            log("\n".join("    " + line for line in tail))
    if errors:
        sys.exit(1)
    log(f"bootstrap: built {', '.join(stale)} in {time.monotonic() - started:.0f} s")


# --------------------------------------------------------------------------------------------------------------------
# Subcommands


def run_step(
    title: str, cmd: Sequence[str | Path], ok_codes: Sequence[int] = (0,), strip_prefix: str = ""
) -> tuple[bool, float, int]:
    heading(title)
    log("$ " + " ".join(str(c) for c in cmd))
    started = time.monotonic()
    if strip_prefix:
        proc = subprocess.run(
            [str(c) for c in cmd], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False
        )
        log(proc.stdout.replace(strip_prefix, "").rstrip("\n"))
        code = proc.returncode
    else:
        code = subprocess.call([str(c) for c in cmd], cwd=ROOT)
    return code in ok_codes, time.monotonic() - started, code


def typecheck_root() -> Path:
    """mypy must see the repository as the package ``gestura`` (its relative imports depend on it), whatever the
    checkout's folder is called: a symlink ``.cache/typecheck/gestura`` -> the repository root, on mypy_path."""
    base = CACHE / "typecheck"
    base.mkdir(parents=True, exist_ok=True)
    link = base / "gestura"
    if link.is_symlink() and Path(os.readlink(link)) == ROOT:
        return base
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(ROOT, target_is_directory=True)
    return base


def cmd_test(pytest_args: Sequence[str]) -> int:
    setup(list(VENVS))
    main = ROOT / MAIN_VENV
    bpy45 = ROOT / BPY45_VENV
    typecheck_root()
    results: list[tuple[str, bool, float, int]] = []

    def record(name: str, outcome: tuple[bool, float, int]) -> None:
        results.append((name, *outcome))

    record("ruff (lint)", run_step("ruff: lint", [venv_tool(main, "ruff"), "check", "."]))
    record(
        "mypy (types, fake-bpy-module-5.0)",
        # mypy sees the repo through the .cache/typecheck/gestura symlink: report repo-relative paths.
        run_step("mypy: type check", [venv_tool(main, "mypy")], strip_prefix=".cache/typecheck/gestura/"),
    )
    # Exit code 5 = "no tests collected" (possible with -k filters): not a failure.
    record(
        "pytest tests (bpy 5.0.1)",
        run_step("pytest tests (bpy 5.0.1, .venv)", [venv_python(main), "-m", "pytest", "tests", *pytest_args],
                 ok_codes=(0, 5)),
    )
    bpy45_version = next(
        (line.split("==")[1] for line in (REQUIREMENTS / "bpy45.txt").read_text().splitlines()
         if line.startswith("bpy==")),
        "4.5",
    )
    record(
        f"pytest tests/integration (bpy {bpy45_version})",
        run_step(f"pytest tests/integration (bpy {bpy45_version}, .venv-bpy45)",
                 [venv_python(bpy45), "-m", "pytest", "tests/integration", *pytest_args], ok_codes=(0, 5)),
    )

    heading("summary")
    for name, ok, seconds, code in results:
        log(f"{'PASS' if ok else 'FAIL'}  {name:<45} {seconds:7.1f} s  (exit {code})")
    failed = [name for name, ok, _, _ in results if not ok]
    summary = f"{len(results) - len(failed)}/{len(results)} steps passed"
    log("\n" + summary + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


def cmd_demo(demo_args: Sequence[str]) -> int:
    setup([MAIN_VENV])
    demo = ROOT / "tools" / "demo.py"
    if not demo.is_file():
        log("bootstrap: tools/demo.py does not exist yet")
        return 2
    return subprocess.call([str(venv_python(ROOT / MAIN_VENV)), str(demo), *demo_args], cwd=ROOT)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in ("setup", "test", "demo"):
        log(__doc__ or "")
        return 0 if args and args[0] in ("-h", "--help") else 2
    command, rest = args[0], args[1:]
    ensure_python_311()
    if command == "setup":
        setup(list(VENVS))
        return 0
    if command == "test":
        return cmd_test(rest)
    return cmd_demo(rest)


if __name__ == "__main__":
    sys.exit(main())
