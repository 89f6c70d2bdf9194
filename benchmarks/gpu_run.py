"""Run the CIFAR-10 recipes on the lent GPU machine in one device call, and bring back their
figures: the script that call runs (see benchmarks/README.md, "GPU").

In order:

1. Data: the ``cifar10.partIofN.npz`` parts carried in ``.gpudata/`` are moved to a staging
   folder (``--staging-dir``, kept between the calls of a warm machine); once all N are there
   they are joined into ``cifar10.npz`` (shapes 50000/10000 and SHA-256 checked) in a data
   folder beside them. ``--stage-only`` stops after staging (the calls that carry the first
   parts). ``--data-dir DIR`` skips all this and uses DIR's ``cifar10.npz``; with neither
   parts nor ``--data-dir``, ``$KERAS_LATENT_DATA_DIR`` or ``../shared/datasets`` is used.
2. Wheels: when ``.whl/`` holds wheels (``gpu_prepare.py``), they are installed with
   ``pip install --no-index --no-deps --target /tmp/site`` and the recipes run with
   ``PYTHONPATH=/tmp/site:<repo>``; without ``.whl/`` (a CPU test) the installed packages serve.
3. The recipes ``--recipes`` names (``recipes/cifar_<name>.py``), one after the other, with
   ``--backend jax`` (``--backend``), the data folder, a run folder under ``--work-dir`` and
   every flag this script does not know (``--quick``, ``--epochs N``, ``--limit N``...), each
   stopped at its own wall-clock limit (``--timeout``) and all within ``--budget-s``.
4. Under ``$OUT`` (``runs/gpu`` when OUT is unset), at most 8 files in at most one folder level:
   ``summary.json``, ``reports.md`` (every recipe's report.md, one after the other) and per
   recipe ``<recipe>/metrics.json`` and ``<recipe>/run.log`` (its whole output). The models and
   plots stay in the run folders. A summary table is printed last (only the output's tail
   comes back from the machine): recipe, exit status, wall seconds, test accuracy (and with flip
   test-time augmentation), test MAE where there is one, and the device line.

Exit status: 0 when every recipe exited 0, 1 when one did not, 2 for a bad flag or no data,
3 when parts are still missing (the message names them).

    PYTHONUNBUFFERED=1 python3 benchmarks/gpu_run.py [--recipes classifier,autoencoder]
        [--timeout simclr=300] [--quick] [--epochs N] ...

Standard library and NumPy only (the recipes run in their own processes).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import gpu_parts

REPO = Path(__file__).resolve().parents[1]
WHEEL_DIR = REPO / ".whl"
PARTS_DIR = REPO / ".gpudata"

#: Recipe name -> script, in the default order (quickest first: a timeout costs the least).
RECIPES = {
    "classifier": "recipes/cifar_classifier.py",
    "autoencoder": "recipes/cifar_autoencoder.py",
    "simclr": "recipes/cifar_simclr.py",
}
#: Default wall-clock limit of each recipe, in seconds (the budget caps them too).
TIMEOUTS = {"classifier": 150, "autoencoder": 180, "simclr": 210}
#: Seconds kept back from the budget for the summary after the last recipe.
RESERVE_S = 15
#: A stopped recipe gets this long between SIGTERM and SIGKILL.
KILL_GRACE_S = 10
#: The exit status ``timeout`` gives a command it stopped.
TIMED_OUT = 124
#: Flags this script sets on every recipe itself.
MANAGED_FLAGS = ("--output", "--backend", "--data-dir")
#: A recipe's output lines worth echoing (the whole output is in its run.log).
ECHO = re.compile(r"^(cifar10:|backend:|precision|error|Error|Traceback|\w+Error\b)")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
#: Exit status of this script when parts are still missing.
EXIT_INCOMPLETE = 3


def say(*parts) -> None:
    print(*parts, flush=True)


# --------------------------------------------------------------------------- flags


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python3 benchmarks/gpu_run.py", allow_abbrev=False,
        description="Run the CIFAR-10 recipes on the GPU machine; unknown flags go to every "
                    "recipe (e.g. --quick, --epochs N, --limit N).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--recipes", default=",".join(RECIPES),
                        help=f"comma-separated, in the order to run: {', '.join(RECIPES)}")
    parser.add_argument("--backend", default="jax", choices=("jax", "tensorflow", "torch"),
                        help="the recipes' --backend")
    parser.add_argument("--data-dir", default=None,
                        help="folder with cifar10.npz (skips staging and joining the parts)")
    parser.add_argument("--timeout", default=None, metavar="S|NAME=S,...",
                        help="seconds per recipe: one number for all, or NAME=S pairs "
                             f"(defaults: {', '.join(f'{k}={v}' for k, v in TIMEOUTS.items())})")
    parser.add_argument("--budget-s", type=float, default=540,
                        help="seconds this whole script may take (each recipe's limit is cut to "
                             "what is left, so the summary is always printed): keep it below the "
                             "device call's timeout_s")
    parser.add_argument("--parts-dir", default=str(PARTS_DIR),
                        help="where the carried parts are (gpu_prepare.py writes them there)")
    parser.add_argument("--staging-dir", default=str(Path(tempfile.gettempdir()) / "keras_latent_data"),
                        help="where carried parts are gathered across the calls of a warm machine")
    parser.add_argument("--work-dir", default=None,
                        help="the recipes' run folders go to WORK_DIR/<recipe> (default: a new "
                             "temporary folder)")
    parser.add_argument("--site-dir", default=str(Path(tempfile.gettempdir()) / "site"),
                        help="where the wheels of .whl/ are installed")
    parser.add_argument("--stage-only", action="store_true",
                        help="move the carried parts to the staging folder and stop")
    parser.add_argument("--no-install", action="store_true", help="do not install .whl/")
    args, extra = parser.parse_known_args(argv)
    if extra and extra[0] == "--":
        extra = extra[1:]
    extra = [flag for flag in extra if flag != "--"]
    for flag in extra:
        if flag.split("=", 1)[0] in MANAGED_FLAGS:
            parser.error(f"{flag.split('=', 1)[0]} is set by this script")
    names = [name.strip().removeprefix("cifar_") for name in args.recipes.split(",") if name.strip()]
    unknown = [name for name in names if name not in RECIPES]
    if unknown or not names:
        parser.error(f"--recipes: unknown {', '.join(unknown) or 'empty list'}; "
                     f"choose from {', '.join(RECIPES)}")
    args.recipes = list(dict.fromkeys(names))
    try:
        args.timeouts = parse_timeouts(args.timeout)
    except ValueError as error:
        parser.error(f"--timeout: {error}")
    args.extra = extra
    return args


def parse_timeouts(text: str | None) -> dict[str, float]:
    """``"300"`` (every recipe) or ``"classifier=120,simclr=400"`` over ``TIMEOUTS``."""
    timeouts = dict(TIMEOUTS)
    if not text:
        return timeouts
    for item in text.split(","):
        name, _, value = item.strip().rpartition("=")
        seconds = float(value)
        if not seconds > 0:
            raise ValueError(f"{item!r}: seconds must be > 0")
        if not name:
            timeouts = {key: seconds for key in timeouts}
        elif name.removeprefix("cifar_") in timeouts:
            timeouts[name.removeprefix("cifar_")] = seconds
        else:
            raise ValueError(f"{item!r}: no recipe {name!r}")
    return timeouts


# --------------------------------------------------------------------------- data and wheels


def find_data(args) -> Path | int:
    """The data folder to pass to the recipes, or the exit status to end with."""
    if args.data_dir and not args.stage_only:
        folder = Path(args.data_dir)
        if not (folder / f"{gpu_parts.DATASET}.npz").is_file():
            say(f"error: --data-dir {folder} has no {gpu_parts.DATASET}.npz")
            return 2
        return folder
    staging = Path(args.staging_dir)
    try:
        moved = gpu_parts.stage_parts(args.parts_dir, staging)
        missing, count = gpu_parts.missing_parts(staging)
    except gpu_parts.PartsError as error:
        say(f"error: {error}")
        return 2
    if moved:
        say(f"staged {', '.join(path.name for path in moved)} in {staging}/")
    if count is not None:
        have = count - len(missing)
        say(f"parts staged: {have} of {count}"
            + (f"; missing {', '.join(map(str, missing))}" if missing else " (complete)"))
    if args.stage_only:
        if missing:
            say(f"send the missing parts next, in calls right after this one (a warm machine "
                f"keeps {staging}/; a fresh one has none of it)")
        return 0
    if count is not None:
        if missing:
            say(f"error: parts {', '.join(map(str, missing))} of {count} are not on this machine "
                f"(not carried, or staged on a machine given back since): repeat this command at "
                f"once carrying them (and .whl): a run stages what it carries first")
            return EXIT_INCOMPLETE
        started = time.monotonic()
        try:
            path = gpu_parts.assemble(staging, staging / "data",
                                      expected_shapes=gpu_parts.EXPECTED_SHAPES)
        except gpu_parts.PartsError as error:
            say(f"error: {error}")
            return 2
        shapes = ", ".join(f"{key} {shape}" for key, shape in gpu_parts.EXPECTED_SHAPES.items())
        say(f"joined {count} parts into {path} ({path.stat().st_size / gpu_parts.MIB:.1f} MiB, "
            f"{time.monotonic() - started:.1f} s): {shapes}, SHA-256 checked")
        return path.parent
    for candidate in (os.environ.get("KERAS_LATENT_DATA_DIR"), REPO.parent / "shared" / "datasets"):
        if candidate and (Path(candidate) / f"{gpu_parts.DATASET}.npz").is_file():
            say(f"no parts carried: using {candidate}")
            return Path(candidate)
    say(f"error: no data: carry the parts of .gpudata/ (benchmarks/gpu_prepare.py) or pass "
        f"--data-dir")
    return 2


def install_wheels(args) -> dict | None:
    """Install .whl/ into ``--site-dir``; the environment the recipes then need (None: the
    install failed). Without wheels, the installed packages and the repository serve."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    path = [str(REPO)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    wheels = sorted(WHEEL_DIR.glob("*.whl")) if WHEEL_DIR.is_dir() else []
    if wheels and not args.no_install:
        command = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps",
                   "--no-compile", "--no-cache-dir", "--upgrade", "--target", args.site_dir,
                   *map(str, wheels)]
        started = time.monotonic()
        completed = subprocess.run(command, capture_output=True, text=True)
        if completed.returncode != 0:
            say(f"error: installing .whl/ failed:\n{completed.stdout[-1500:]}{completed.stderr[-1500:]}")
            return None
        say(f"installed {', '.join(wheel.name.split('-')[0] + ' ' + wheel.name.split('-')[1] for wheel in wheels)} "
            f"into {args.site_dir} ({time.monotonic() - started:.1f} s)")
        path.insert(0, args.site_dir)
    env["PYTHONPATH"] = os.pathsep.join(path)
    env.setdefault("MPLBACKEND", "Agg")
    return env


def gpu_line() -> str | None:
    """``nvidia-smi``'s name and memory of each GPU, or None without one."""
    if not shutil.which("nvidia-smi"):
        return None
    try:
        completed = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return "; ".join(line.strip() for line in completed.stdout.splitlines() if line.strip()) or None


# --------------------------------------------------------------------------- recipes


def run_recipe(name, args, env, data_dir, work_dir, out, timeout) -> dict:
    """Run one recipe to its end or its limit; its output goes to OUT/<script>/run.log."""
    script = Path(RECIPES[name]).stem
    folder = out / script
    folder.mkdir(parents=True, exist_ok=True)
    log_path = folder / "run.log"
    command = [sys.executable, str(REPO / RECIPES[name]), "--backend", args.backend,
               "--data-dir", str(data_dir), "--output", str(work_dir / script), *args.extra]
    row = {"recipe": script, "command": " ".join(["python3", *command[1:]]),
           "timeout_s": round(timeout, 1), "status": None, "wall_s": None}
    say(f"\n=== {script} (limit {timeout:.0f} s): {row['command']}")
    started = time.monotonic()
    with open(log_path, "wb") as log:
        log.write(f"$ {row['command']}\n".encode())
        log.flush()
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
                                   env=env, start_new_session=True)
        try:
            status = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop(process)
            status = TIMED_OUT
            log.write(f"\n[gpu_run] stopped at its limit of {timeout:.0f} s\n".encode())
    row["wall_s"] = round(time.monotonic() - started, 1)
    row["status"] = status
    lines = log_lines(log_path)
    for line in lines:
        if ECHO.match(line):
            say(f"  {line[:300]}")
    if status != 0:
        say(f"  ... last lines of {log_path}:")
        for line in lines[-20:]:
            say(f"  | {line[:300]}")
    row.update(collect(work_dir / script, folder, out, lines))
    phases = ", ".join(f"{phase} {seconds:.0f} s"
                       for phase, seconds in (row.get("phases_s") or {}).items())
    say(f"=== {script}: exit {status}{' (timed out)' if status == TIMED_OUT else ''}, "
        f"{row['wall_s']} s" + (f" ({phases})" if phases else ""))
    return row


def stop(process) -> None:
    """SIGTERM to the recipe's process group, SIGKILL after a grace period."""
    for sig, wait in ((signal.SIGTERM, KILL_GRACE_S), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def log_lines(path) -> list[str]:
    """The log's lines without progress-bar redraws and colour codes."""
    text = _ANSI.sub("", Path(path).read_text(errors="replace"))
    lines = []
    for line in re.split(r"[\r\n]", text):
        line = line.rstrip()
        if line and "━" not in line and not re.match(r"^\s*\d+/\d+ ", line):
            lines.append(line)
    return lines


def collect(run_dir: Path, folder: Path, out: Path, lines) -> dict:
    """Copy metrics.json into OUT, append report.md to OUT/reports.md, and read the figures."""
    figures = {"accuracy": None, "accuracy_flip_tta": None, "mae": None, "device": None,
               "phases_s": None}
    metrics_path = run_dir / "metrics.json"
    if metrics_path.is_file():
        shutil.copyfile(metrics_path, folder / "metrics.json")
        try:
            metrics = json.loads(metrics_path.read_text())
        except ValueError:
            metrics = {}
        for key in ("accuracy", "accuracy_flip_tta", "mae"):
            value = metrics.get(key)
            figures[key] = value.get("test") if isinstance(value, dict) else value
        run = metrics.get("run") or {}
        if run.get("device"):
            figures["device"] = f"{run.get('backend', '?')} on {run['device']}"
        figures["phases_s"] = run.get("phases_s")
    report = run_dir / "report.md"
    if report.is_file():
        with open(out / "reports.md", "a") as handle:
            handle.write(f"<!-- {folder.name}/report.md -->\n\n{report.read_text().rstrip()}\n\n")
    if figures["device"] is None:
        for line in lines:
            if line.startswith("backend: "):
                figures["device"] = line.removeprefix("backend: ")
                break
    return figures


# --------------------------------------------------------------------------- summary


def summary_table(rows) -> list[str]:
    def number(value, digits):
        return "-" if value is None else f"{value:.{digits}f}"

    lines = ["| recipe | exit | wall s | test acc | test acc (flip TTA) | test MAE | device |",
             "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for row in rows:
        status = "-" if row["status"] is None else str(row["status"])
        if row["status"] == TIMED_OUT:
            status += " (timeout)"
        lines.append(f"| {row['recipe']} | {status} | {number(row['wall_s'], 1)} | "
                     f"{number(row.get('accuracy'), 4)} | {number(row.get('accuracy_flip_tta'), 4)} "
                     f"| {number(row.get('mae'), 4)} | {row.get('device') or '-'} |")
    return lines


def clean_out(out: Path) -> None:
    """Remove what an earlier run of this script left in OUT (its own file names only)."""
    for name in ("summary.json", "reports.md"):
        (out / name).unlink(missing_ok=True)
    for script in (Path(path).stem for path in RECIPES.values()):
        for name in ("metrics.json", "run.log"):
            (out / script / name).unlink(missing_ok=True)


def main(argv=None) -> int:
    started = time.monotonic()
    args = parse_args(argv)
    out = Path(os.environ.get("OUT") or REPO / "runs" / "gpu")
    say(f"gpu_run: {', '.join(args.recipes)} on --backend {args.backend}; figures to {out}/; "
        f"python {platform.python_version()}; {gpu_line() or 'no nvidia-smi'}")
    data_dir = find_data(args)
    if isinstance(data_dir, int) or args.stage_only:
        return data_dir if isinstance(data_dir, int) else 0
    env = install_wheels(args)
    if env is None:
        return 2
    out.mkdir(parents=True, exist_ok=True)
    clean_out(out)
    work_dir = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="keras_latent_gpu_"))
    work_dir.mkdir(parents=True, exist_ok=True)
    say(f"run folders (models, plots) under {work_dir}/; extra recipe flags: "
        f"{' '.join(args.extra) or 'none'}")

    rows = []
    for name in args.recipes:
        left = args.budget_s - (time.monotonic() - started) - RESERVE_S
        if left < 10:
            rows.append({"recipe": Path(RECIPES[name]).stem, "status": None, "wall_s": None,
                         "skipped": "no time left in --budget-s"})
            say(f"\n=== {Path(RECIPES[name]).stem}: skipped, {max(left, 0):.0f} s left of --budget-s")
            continue
        rows.append(run_recipe(name, args, env, data_dir, work_dir, out,
                               min(args.timeouts[name], left)))

    summary = {"backend": args.backend, "gpu": gpu_line(), "python": platform.python_version(),
               "data_dir": str(data_dir), "work_dir": str(work_dir), "extra_args": args.extra,
               "total_s": round(time.monotonic() - started, 1), "recipes": rows}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    say(f"\nSummary ({args.backend}; {summary['total_s']} s in all; files in {out}/):")
    for line in summary_table(rows):
        say(line)
    return 0 if all(row["status"] == 0 for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
