#!/usr/bin/env python3
"""Builds the Gestura extension zip (linux-x64) with Blender's own extension tool.

    .venv/bin/python tools/build_extension.py                 # -> dist/gestura-<version>.zip (reused if up to date)
    .venv/bin/python tools/build_extension.py --force         # rebuild even if up to date
    .venv/bin/python tools/build_extension.py --validate-only # validate the source manifest only

Steps:
1. Stage a copy of the extension source into ``build/gestura/``, leaving out what the manifest's
   ``[build] paths_exclude_pattern`` excludes (matched with Blender's own pattern code).
2. Download into the staged ``wheels/`` the linux-x64 CPython 3.11 wheels of every pin in
   ``requirements/runtime.txt`` (except what Blender ships, such as numpy), cached in ``.cache/wheels``.
3. Write ``wheels = [...]`` into the staged manifest (the committed manifest has none: wheels are built).
4. ``blender_ext.py validate build/gestura`` then ``blender_ext.py build --source-dir build/gestura
   --output-dir dist``; ``blender_ext.py`` is found inside the bpy package of this interpreter or of ``.venv``.

Standard library only; needs Python 3.11 (``tomllib``; the wheels are cp311) and pip for the downloads.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = "blender_manifest.toml"
RUNTIME_REQUIREMENTS = ROOT / "requirements" / "runtime.txt"
WHEEL_CACHE = ROOT / ".cache" / "wheels"
BUILD_DIR = ROOT / "build"
DIST_DIR = ROOT / "dist"
STAMP = ".gestura-build.json"
# Bump when the build procedure changes in a way that must invalidate existing zips.
BUILD_SCHEMA = "1"

# Blender ships these in its own Python: never bundle them (a second numpy would break Blender).
BLENDER_PROVIDED = {"numpy", "requests", "certifi", "charset-normalizer", "idna", "urllib3", "zstandard", "cython"}

# Blender 4.5 and 5.0 on Linux need glibc 2.28, so any manylinux tag up to 2_28 works.
LINUX_X64_PLATFORMS = [
    "manylinux_2_28_x86_64",
    "manylinux_2_27_x86_64",
    "manylinux_2_26_x86_64",
    "manylinux_2_24_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
    "manylinux2010_x86_64",
    "manylinux1_x86_64",
]
PYTHON_VERSION = "3.11"


def log(message: str) -> None:
    print(f"build_extension: {message}", flush=True)


def canonical_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# --------------------------------------------------------------------------------------------------------------------
# Blender's extension tool


def find_blender_ext() -> Path:
    """``bpy/<ver>/scripts/addons_core/bl_pkg/cli/blender_ext.py`` in this interpreter's bpy, else in .venv's."""
    pattern = "bpy/*/scripts/addons_core/bl_pkg/cli/blender_ext.py"
    site_dirs = [Path(sysconfig.get_paths()["purelib"]), Path(sysconfig.get_paths()["platlib"])]
    site_dirs += sorted((ROOT / ".venv").glob("lib/python3*/site-packages"))
    for site in site_dirs:
        found = sorted(site.glob(pattern))
        if found:
            return found[-1]
    sys.exit(
        "build_extension: cannot find Blender's blender_ext.py (install bpy: `python3 tools/bootstrap.py setup`, "
        "then run this with .venv/bin/python)"
    )


def load_blender_ext(path: Path) -> ModuleType:
    """Imports blender_ext.py as a module, to reuse its gitignore-style path matching (PathPatternMatch)."""
    spec = importlib.util.spec_from_file_location("_gestura_blender_ext", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_blender_ext(blender_ext: Path, *args: str) -> None:
    cmd = [sys.executable, str(blender_ext), *args]
    log("$ " + " ".join(cmd))
    subprocess.run(cmd, cwd=ROOT, check=True)


# --------------------------------------------------------------------------------------------------------------------
# Staging


def read_manifest(source: Path) -> dict:
    with open(source / MANIFEST, "rb") as fh:
        return tomllib.load(fh)


def source_files(blender_ext_module: ModuleType, manifest: dict) -> list[str]:
    """Relative paths (forward slashes) of the files the extension ships, per ``paths_exclude_pattern``."""
    patterns = list(manifest.get("build", {}).get("paths_exclude_pattern", []))
    # The bundled wheels are built fresh into the staged copy; never take stale ones from the source tree.
    patterns.append("/wheels/*.whl")
    matcher = blender_ext_module.PathPatternMatch(patterns)
    files: list[str] = []
    for dirpath, dirnames, filenames in os.walk(ROOT):
        rel_dir = Path(dirpath).relative_to(ROOT).as_posix()
        prefix = "" if rel_dir == "." else rel_dir + "/"
        dirnames[:] = sorted(d for d in dirnames if not matcher.test_path(prefix + d + "/"))
        for name in sorted(filenames):
            rel = prefix + name
            if not matcher.test_path(rel):
                files.append(rel)
    return files


def stage_source(files: list[str], stage: Path) -> None:
    if stage.exists():
        shutil.rmtree(stage)
    for rel in files:
        dst = stage / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dst)


# --------------------------------------------------------------------------------------------------------------------
# Wheels


def runtime_pins() -> list[tuple[str, str]]:
    """(name, version) for each ``name==version`` line of requirements/runtime.txt, minus Blender's own."""
    pins: list[tuple[str, str]] = []
    for line in RUNTIME_REQUIREMENTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*==\s*([A-Za-z0-9_.+!\-]+)", line)
        if not match:
            sys.exit(f"build_extension: requirements/runtime.txt must pin with `==`: {line!r}")
        name, version = match.groups()
        if canonical_name(name) in BLENDER_PROVIDED:
            continue
        pins.append((name, version))
    return pins


def cached_wheel(name: str, version: str) -> Path | None:
    """The cached wheel for ``name==version``, if any (wheel filenames normalise ``-`` and ``.`` to ``_``)."""
    want_name = canonical_name(name)
    for wheel in sorted(WHEEL_CACHE.glob("*.whl")):
        parts = wheel.name[:-4].split("-")
        if len(parts) >= 5 and canonical_name(parts[0]) == want_name and parts[1] == version:
            return wheel
    return None


def pip_download_cmd(requirement_args: list[str]) -> list[str]:
    return [
        sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-input",
        "--only-binary=:all:", "--no-deps", "--implementation", "cp", "--python-version", PYTHON_VERSION,
        *[arg for platform in LINUX_X64_PLATFORMS for arg in ("--platform", platform)],
        "--dest", str(WHEEL_CACHE), *requirement_args,
    ]


def build_pure_wheel(name: str, version: str) -> None:
    """For a pin published as an sdist only (srt, for example): build its wheel locally. Only pure-Python
    results (``py3-none-any``) are accepted, since a compiled one would match this machine, not Blender."""
    tmp = BUILD_DIR / "sdist-wheels"
    shutil.rmtree(tmp, ignore_errors=True)
    cmd = [
        sys.executable, "-m", "pip", "wheel", "--disable-pip-version-check", "--no-input", "--no-deps",
        "--no-binary", name, "--wheel-dir", str(tmp), f"{name}=={version}",
    ]
    log("$ " + " ".join(cmd))
    subprocess.run(cmd, check=True)
    built = sorted(tmp.glob("*.whl"))
    if len(built) != 1 or not built[0].name.endswith("-none-any.whl"):
        sys.exit(f"build_extension: {name}=={version} has no linux-x64 cp311 wheel and is not pure Python: {built}")
    shutil.move(str(built[0]), WHEEL_CACHE / built[0].name)


def download_wheels(pins: list[tuple[str, str]]) -> list[Path]:
    WHEEL_CACHE.mkdir(parents=True, exist_ok=True)
    missing = [(n, v) for n, v in pins if cached_wheel(n, v) is None]
    if missing:
        log(f"downloading {len(missing)} wheel(s) for linux-x64 / CPython {PYTHON_VERSION} into {WHEEL_CACHE}")
        req = BUILD_DIR / "wheel-requirements.txt"
        req.parent.mkdir(parents=True, exist_ok=True)
        req.write_text("".join(f"{n}=={v}\n" for n, v in missing))
        cmd = pip_download_cmd(["-r", str(req)])
        log("$ " + " ".join(cmd))
        if subprocess.run(cmd, check=False).returncode != 0:
            # One pin without a binary wheel fails the whole batch: go one by one.
            for name, version in missing:
                if cached_wheel(name, version) is not None:
                    continue
                if subprocess.run(pip_download_cmd([f"{name}=={version}"]), check=False).returncode != 0:
                    log(f"{name}=={version}: no binary wheel on the index, building one from the sdist")
                    build_pure_wheel(name, version)
    wheels = []
    for name, version in pins:
        wheel = cached_wheel(name, version)
        if wheel is None:
            sys.exit(f"build_extension: no wheel for {name}=={version} after download")
        wheels.append(wheel)
    return wheels


def write_staged_manifest(stage: Path, wheel_names: list[str]) -> None:
    """Inserts ``wheels = [...]`` among the top-level keys (before the first table) of the staged manifest."""
    path = stage / MANIFEST
    text = path.read_text()
    if re.search(r"^\s*wheels\s*=", text, re.MULTILINE):
        sys.exit("build_extension: the source manifest must not list wheels; they are written at build time")
    lines = ["# Written by tools/build_extension.py.", "wheels = ["]
    lines += [f'    "./wheels/{name}",' for name in wheel_names]
    lines += ["]", ""]
    block = "\n".join(lines) + "\n"
    match = re.search(r"^\[", text, re.MULTILINE)
    text = text[: match.start()] + block + text[match.start():] if match else text.rstrip("\n") + "\n\n" + block
    path.write_text(text)
    tomllib.loads(text)  # stays valid TOML


# --------------------------------------------------------------------------------------------------------------------
# Main


def build_hash(files: list[str], pins: list[tuple[str, str]]) -> str:
    digest = hashlib.sha256(f"schema={BUILD_SCHEMA}\n".encode())
    digest.update(Path(__file__).read_bytes())
    for rel in files:
        digest.update(f"\0{rel}\0".encode())
        digest.update((ROOT / rel).read_bytes())
    digest.update(repr(pins).encode())
    return digest.hexdigest()


def up_to_date_zip(digest: str) -> Path | None:
    stamp = DIST_DIR / STAMP
    if not stamp.is_file():
        return None
    try:
        data = json.loads(stamp.read_text())
    except ValueError:
        return None
    zip_path = DIST_DIR / str(data.get("zip", ""))
    if data.get("hash") == digest and zip_path.is_file() and zip_path.suffix == ".zip":
        return zip_path
    return None


def build(force: bool = False) -> Path:
    blender_ext = find_blender_ext()
    module = load_blender_ext(blender_ext)
    manifest = read_manifest(ROOT)
    files = source_files(module, manifest)
    pins = runtime_pins()
    digest = build_hash(files, pins)
    if not force and (existing := up_to_date_zip(digest)):
        log(f"up to date: {existing} ({existing.stat().st_size / 1e6:.1f} MB)")
        return existing

    stage = BUILD_DIR / manifest["id"]
    stage_source(files, stage)
    wheels = download_wheels(pins)
    (stage / "wheels").mkdir(parents=True, exist_ok=True)
    for wheel in wheels:
        shutil.copy2(wheel, stage / "wheels" / wheel.name)
    write_staged_manifest(stage, [w.name for w in wheels])
    log(f"staged {len(files)} source files and {len(wheels)} wheels in {stage}")

    run_blender_ext(blender_ext, "validate", str(stage))
    DIST_DIR.mkdir(parents=True, exist_ok=True)
    before = {p.name: p.stat().st_mtime_ns for p in DIST_DIR.glob("*.zip")}
    expected = DIST_DIR / f"{manifest['id']}-{manifest['version']}.zip"
    expected.unlink(missing_ok=True)
    run_blender_ext(blender_ext, "build", "--source-dir", str(stage), "--output-dir", str(DIST_DIR))
    built = [p for p in DIST_DIR.glob("*.zip") if before.get(p.name) != p.stat().st_mtime_ns]
    if expected.is_file():
        zip_path = expected
    elif len(built) == 1:
        zip_path = built[0]
    else:
        sys.exit(f"build_extension: cannot tell which zip was built in {DIST_DIR}: {built}")
    (DIST_DIR / STAMP).write_text(json.dumps({"hash": digest, "zip": zip_path.name}) + "\n")
    log(f"built {zip_path} ({zip_path.stat().st_size / 1e6:.1f} MB)")
    return zip_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--force", action="store_true", help="rebuild even if dist/ holds an up-to-date zip")
    parser.add_argument(
        "--validate-only", action="store_true", help="only validate the source tree's manifest with blender_ext.py"
    )
    args = parser.parse_args(argv)
    if args.validate_only:
        run_blender_ext(find_blender_ext(), "validate", str(ROOT))
        return 0
    zip_path = build(force=args.force)
    print(zip_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
