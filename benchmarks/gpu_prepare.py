"""Prepare, on a machine with internet and the data, what the GPU machine needs to run the
CIFAR-10 recipes: the wheels it lacks and CIFAR-10 cut into parts that fit its calls.

The lent GPU machine (see benchmarks/README.md, "GPU") has Python 3.12, JAX with CUDA, NumPy,
h5py, rich, absl-py, ml-dtypes... but no Keras, no KerasTuner and no internet, and it gets only
the repository's working tree: at most 64 MiB a call, carried files included. So:

1. ``.whl/``: Keras and KerasTuner at the versions installed here, and their requirements the
   GPU machine does not have (namex, optree, kt-legacy), downloaded with the ``pip download``
   command of the device notes (one version each; each wheel's Requires-Dist is checked against
   what is there, and a requirement that neither is nor travels stops the script).
2. ``.gpudata/``: ``cifar10.npz`` cut into ``cifar10.partIofN.npz`` parts (``gpu_parts.py``), each
   small enough that one part, the wheels and the working tree stay under ``--budget-mib``.

It ends by printing each part's size and the device calls to make, in order (their ``carry``
lists and commands). Both folders are in .gitignore.

    python benchmarks/gpu_prepare.py [--data-dir ../shared/datasets] [--budget-mib 60]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import gpu_parts

REPO = Path(__file__).resolve().parents[1]
WHEEL_DIR = ".whl"
PARTS_DIR = ".gpudata"

#: What travels as wheels: Keras and KerasTuner (what keras-latent needs that the GPU machine
#: lacks) and their requirements that are not there. Versions: the ones installed here.
WHEELS = ("keras", "keras-tuner", "namex", "optree", "kt-legacy")

#: The GPU machine's packages that Keras and KerasTuner may ask for (device notes, KINDS.md:
#: "Python packages already there"); a requirement outside these and WHEELS stops the script.
GPU_HAS = frozenset({
    "absl-py", "numpy", "rich", "h5py", "ml-dtypes", "packaging", "requests", "typing-extensions",
    "protobuf", "grpcio", "scipy", "jax", "jaxlib", "matplotlib", "scikit-learn", "pillow",
    "markdown-it-py", "pygments", "mdurl", "idna", "certifi", "urllib3", "charset-normalizer",
    "tensorboard", "pandas", "six", "pyyaml", "tqdm", "opt-einsum", "torch",
})

#: The device notes' download command (Python 3.12 x86-64 manylinux wheels, nothing else).
PIP_DOWNLOAD = [
    "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version", "3.12",
    "--implementation", "cp", "--platform", "manylinux_2_28_x86_64",
    "--platform", "manylinux_2_27_x86_64", "--platform", "manylinux_2_17_x86_64",
    "--platform", "manylinux2014_x86_64", "--platform", "manylinux1_x86_64",
]

#: The environment the GPU machine's markers evaluate in (Requires-Dist "; python_version...").
GPU_MARKER_ENV = {
    "python_version": "3.12", "python_full_version": "3.12.3", "sys_platform": "linux",
    "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix",
    "implementation_name": "cpython", "platform_python_implementation": "CPython", "extra": "",
}

#: What a call's command does with the parts and the wheels (gpu_run.py's flags).
RUN = "python3 benchmarks/gpu_run.py"


def normalise(name: str) -> str:
    """A project name as pip compares them (PEP 503): ``Keras_Tuner`` -> ``keras-tuner``."""
    return re.sub(r"[-_.]+", "-", name).lower()


# --------------------------------------------------------------------------- wheels


def wheel_project(path) -> str:
    """The normalised project name of a wheel file."""
    return normalise(Path(path).name.split("-")[0])


def download_wheels(folder: Path, pins: dict[str, str | None]) -> list[Path]:
    """``pip download`` each ``name==version`` (the device notes' command) into ``folder``,
    after removing wheels of the same projects at other versions (two stop the install)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, version in pins.items():
        wanted = normalise(name)
        for old in folder.glob("*.whl"):
            if wheel_project(old) == wanted and (version is None or f"-{version}-" not in old.name):
                old.unlink()
        spec = f"{name}=={version}" if version else name
        command = [sys.executable, *PIP_DOWNLOAD, "-d", os.path.relpath(folder, REPO), spec]
        print("$", " ".join(["python3", *command[1:]]), flush=True)
        completed = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
        if completed.returncode != 0:
            sys.exit(f"error: pip download {spec} failed:\n{completed.stderr[-2000:]}")
    return sorted(folder.glob("*.whl"))


def requirements(wheel) -> list[str]:
    """The Requires-Dist names of a wheel that apply on the GPU machine (no extras)."""
    with zipfile.ZipFile(wheel) as archive:
        (metadata,) = [name for name in archive.namelist()
                       if name.endswith(".dist-info/METADATA")]
        text = archive.read(metadata).decode()
    names = []
    for line in text.splitlines():
        if not line.startswith("Requires-Dist:"):
            continue
        requirement = line.split(":", 1)[1].strip()
        spec, _, marker = requirement.partition(";")
        if marker.strip() and not _marker_applies(marker.strip()):
            continue
        names.append(normalise(re.split(r"[\s\[<>=!~(;]", spec.strip(), maxsplit=1)[0]))
    return names


def _marker_applies(marker: str) -> bool:
    """Whether an environment marker holds on the GPU machine (any ``extra`` marker: no)."""
    if "extra" in marker:
        return False
    try:
        from packaging.markers import Marker
    except ImportError:  # pip's vendored copy
        from pip._vendor.packaging.markers import Marker
    return Marker(marker).evaluate(GPU_MARKER_ENV)


def check_wheels(wheels) -> list[str]:
    """Problems: projects present twice, requirements neither carried nor on the GPU."""
    problems = []
    projects = [wheel_project(wheel) for wheel in wheels]
    for project in sorted(set(projects)):
        if projects.count(project) > 1:
            problems.append(f"{project}: {projects.count(project)} versions in {WHEEL_DIR}/")
    carried = set(projects)
    for wheel in wheels:
        for name in requirements(wheel):
            if name not in carried and name not in GPU_HAS:
                problems.append(f"{Path(wheel).name} needs {name}, which neither travels nor is "
                                "on the GPU machine: add it to WHEELS")
    return problems


def installed_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


# --------------------------------------------------------------------------- data


def tree_bytes(repo: Path) -> int:
    """Bytes of the working tree that travels: tracked files and untracked ones git does not
    ignore (carried paths are counted by the caller)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=repo, capture_output=True, check=True).stdout
    total = 0
    for name in filter(None, listed.split(b"\0")):
        path = repo / os.fsdecode(name)
        if path.is_file() and not path.is_symlink():
            total += path.stat().st_size
    return total


def cut_data(source: Path, folder: Path, max_part: int, count: int | None,
             codec: str) -> list[Path]:
    """Cut ``source`` into the fewest parts of at most ``max_part`` bytes (or ``count``)."""
    arrays = gpu_parts.load_arrays(source)
    for key, shape in gpu_parts.EXPECTED_SHAPES.items():
        if key not in arrays or arrays[key].shape != shape:
            sys.exit(f"error: {source}: {key} should have shape {shape}")
    if count:
        return gpu_parts.write_parts(arrays, folder, count=count, codec=codec)
    return gpu_parts.write_parts(arrays, folder, max_bytes=max_part, codec=codec)


def device_calls(parts: list[Path], repo: Path) -> list[dict]:
    """The device calls, in order: each carries one part; the last also carries the wheels
    and runs the recipes (the earlier ones stage their part on the warm machine)."""
    calls = []
    for number, part in enumerate(parts, start=1):
        last = number == len(parts)
        carry = ([WHEEL_DIR] if last else []) + [str(part.relative_to(repo))]
        command = (f"PYTHONUNBUFFERED=1 {RUN}" if last else f"{RUN} --stage-only")
        calls.append({"call": number, "carry": carry, "command": command,
                      "timeout_s": 600 if last else 120})
    return calls


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    default_data = os.environ.get("KERAS_LATENT_DATA_DIR") or str(REPO.parent / "shared" / "datasets")
    parser.add_argument("--data-dir", default=default_data, help="folder with cifar10.npz")
    parser.add_argument("--budget-mib", type=float, default=60.0,
                        help="what one device call may carry: part + wheels + working tree "
                             "(the limit is 64 MiB)")
    parser.add_argument("--parts", type=int, default=None,
                        help="cut into exactly this many parts (default: the fewest that fit)")
    parser.add_argument("--codec", choices=gpu_parts.CODECS, default="xz",
                        help="xz: images as colour-decorrelated prediction residuals, xz "
                             "(57 %% of the raw bytes); zlib: np.savez_compressed (92 %%)")
    parser.add_argument("--skip-wheels", action="store_true",
                        help=f"keep {WHEEL_DIR}/ as it is (no download)")
    parser.add_argument("--skip-data", action="store_true",
                        help=f"keep {PARTS_DIR}/ as it is (no cutting)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    wheel_bytes = prepare_wheels(REPO / WHEEL_DIR, download=not args.skip_wheels)
    tree = tree_bytes(REPO)
    print(f"working tree that travels: {tree / gpu_parts.MIB:.2f} MiB")
    parts = prepare_parts(args, REPO / PARTS_DIR, wheel_bytes + tree)
    print(f"\n{PARTS_DIR}/:")
    for part in parts:
        size = part.stat().st_size
        print(f"  {size / gpu_parts.MIB:7.2f} MiB  {part.name}  (a call carrying it and "
              f"{WHEEL_DIR}/: {(size + wheel_bytes + tree) / gpu_parts.MIB:.2f} MiB)")
    print("\nDevice calls, one right after the other (a warm machine is kept only about 30 s "
          "after a call; the staged parts are lost with it):")
    for call in device_calls(parts, REPO):
        print(json.dumps(call))
    print("Add flags to the last command as needed, e.g. --recipes classifier,autoencoder, "
          "--timeout simclr=300, --quick (benchmarks/README.md, 'GPU'). If it answers that "
          "parts are missing (exit status 3: the machine went back between the calls), repeat "
          "it at once carrying .whl and the missing parts: a run stages what it carries first.")


def prepare_wheels(wheel_dir, download=True) -> int:
    """Download (unless told not to) and check the wheels; returns their size in bytes."""
    if download:
        pins = {name: installed_version(name) for name in WHEELS}
        print("wheels for the GPU machine (versions installed here):",
              json.dumps(pins), flush=True)
        download_wheels(wheel_dir, pins)
    wheels = sorted(wheel_dir.glob("*.whl"))
    problems = check_wheels(wheels)
    if problems:
        sys.exit("error: " + "\n  ".join(problems))
    wheel_bytes = gpu_parts.folder_size(wheels)
    print(f"\n{WHEEL_DIR}/ ({wheel_bytes / gpu_parts.MIB:.2f} MiB; every requirement is carried "
          "or on the GPU machine):")
    for wheel in wheels:
        print(f"  {wheel.stat().st_size / gpu_parts.MIB:7.2f} MiB  {wheel.name}")
    return wheel_bytes


def prepare_parts(args, parts_dir, carried_bytes) -> list:
    """CIFAR-10 cut into parts that fit a call beside ``carried_bytes`` (or the parts already
    there with --skip-data)."""
    if args.skip_data:
        parts = sorted(gpu_parts.find_parts(parts_dir).values(),
                       key=lambda path: gpu_parts.parse_part_name(path.name)[1])
    else:
        max_part = int(args.budget_mib * gpu_parts.MIB) - carried_bytes
        if max_part < 8 * gpu_parts.MIB:
            sys.exit(f"error: only {max_part / gpu_parts.MIB:.1f} MiB left for a part under "
                     f"--budget-mib {args.budget_mib}")
        source = Path(args.data_dir) / f"{gpu_parts.DATASET}.npz"
        if not source.is_file():
            sys.exit(f"error: no {source}; pass --data-dir")
        print(f"\ncutting {source} ({source.stat().st_size / gpu_parts.MIB:.1f} MiB) into parts "
              f"of at most {max_part / gpu_parts.MIB:.1f} MiB ({args.codec}; about two minutes "
              "for xz) ...", flush=True)
        started = time.monotonic()
        parts = cut_data(source, parts_dir, max_part, args.parts, args.codec)
        print(f"done in {time.monotonic() - started:.0f} s")
    if not parts:
        sys.exit(f"error: no parts in {PARTS_DIR}/")
    return parts


if __name__ == "__main__":
    main()
