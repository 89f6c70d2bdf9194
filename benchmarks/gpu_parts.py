"""CIFAR-10 in parts small enough for the GPU machine's working-tree limit, and back.

The GPU machine gets only the repository's working tree (64 MiB a call, carried files
included) and not ../shared, while ``cifar10.npz`` is 170 MB. ``gpu_prepare.py`` (run where the
data is) cuts it into parts, ``gpu_run.py`` (run on the GPU machine) collects them, call after
call, into a staging folder and joins them into a ``cifar10.npz`` again.

Each array is cut into blocks of ``block_size`` rows; the blocks, in order, are packed into the
fewest parts that fit the size asked for. A part is an ``.npz`` file ``cifar10.partIofN.npz``
holding its blocks (``b0``, ``b1``...) and four small arrays: ``_part`` ([I, N], 1-based),
``_digest`` (the SHA-256 of the whole dataset, see ``digest``), ``_codec`` and ``_layout`` (JSON:
every array's shape and dtype, and this part's blocks as [name, start, stop]). Two codecs:

- ``xz`` (the default): uint8 RGB images (N, H, W, 3) as R-G, G, B-G, each pixel minus the
  LOCO-I / JPEG-LS median predictor of its left, upper and upper-left neighbours (mod 256), then
  xz (LZMA2, preset 6): 57 % of the raw bytes on CIFAR-10 (a ``cifar10.npz`` is 92 %), so the
  data travels in two calls instead of three. Other arrays (the labels) are stored as they are.
- ``zlib``: ``np.savez_compressed`` of the raw slices.

Both are lossless: joining checks that every part of one digest is there, puts the blocks
back, and checks the shapes and the SHA-256, so a part from another preparation or a damaged
file is refused.

Standard library and NumPy only: the GPU machine runs this before Keras is installed there.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import math
import os
import re
import shutil
import zlib
from pathlib import Path

import numpy as np

#: The dataset's file, and what its arrays must look like once joined.
DATASET = "cifar10"
EXPECTED_SHAPES = {
    "x_train": (50000, 32, 32, 3),
    "y_train": (50000,),
    "x_test": (10000, 32, 32, 3),
    "y_test": (10000,),
}
CODECS = ("xz", "zlib")
#: Rows per block: CIFAR-10 images in 24 blocks of about 4 MiB (xz), the parts' granularity.
BLOCK_SIZE = 2500
XZ_PRESET = 6

_PART_NAME = re.compile(r"^(?P<stem>[A-Za-z0-9_-]+)\.part(?P<index>\d+)of(?P<count>\d+)\.npz$")

MIB = 1024 * 1024


class PartsError(ValueError):
    """The parts cannot be joined (missing, mixed or damaged); the message says which."""


def part_name(stem: str, index: int, count: int) -> str:
    """``cifar10.part2of3.npz``: letters, digits, '.', '_' and '-' only."""
    return f"{stem}.part{index}of{count}.npz"


def parse_part_name(name: str):
    """``(stem, index, count)`` of a part's file name, or None for any other file."""
    match = _PART_NAME.match(name)
    if not match:
        return None
    return match["stem"], int(match["index"]), int(match["count"])


def digest(arrays: dict) -> str:
    """SHA-256 over each array's name, dtype, shape and bytes, in name order: the same for
    byte-identical arrays however they were stored."""
    sha = hashlib.sha256()
    for key in sorted(arrays):
        array = np.ascontiguousarray(arrays[key])
        sha.update(f"{key}|{array.dtype.str}|{tuple(array.shape)}|".encode())
        sha.update(array.reshape(-1).view(np.uint8))
    return sha.hexdigest()


def load_arrays(path) -> dict:
    """Every array of an ``.npz`` file, read into memory (no pickles)."""
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


# --------------------------------------------------------------------------- the xz codec


def _is_rgb(array) -> bool:
    return array.dtype == np.uint8 and array.ndim == 4 and array.shape[-1] == 3


def _med(left, up, upper_left):
    """LOCO-I's median edge detector: the prediction of a pixel from three neighbours."""
    high, low = np.maximum(left, up), np.minimum(left, up)
    return np.where(upper_left >= high, low, np.where(upper_left <= low, high,
                                                      left + up - upper_left))


def encode_images(images) -> bytes:
    """uint8 (N, H, W, 3) -> xz bytes of the colour-decorrelated prediction residuals."""
    x = images.astype(np.int16)
    x[..., 0] = (x[..., 0] - x[..., 1]) & 255
    x[..., 2] = (x[..., 2] - x[..., 1]) & 255
    padded = np.zeros((x.shape[0], x.shape[1] + 1, x.shape[2] + 1, 3), np.int16)
    padded[:, 1:, 1:] = x
    prediction = _med(padded[:, 1:, :-1], padded[:, :-1, 1:], padded[:, :-1, :-1])
    residual = ((x - prediction) & 255).astype(np.uint8)
    return lzma.compress(residual.tobytes(), format=lzma.FORMAT_XZ,
                         filters=[{"id": lzma.FILTER_LZMA2, "preset": XZ_PRESET}])


def decode_images(payload: bytes, shape) -> np.ndarray:
    """``encode_images`` undone: the pixels are predicted again in raster order, each from
    the ones already decoded (all images of the block at once)."""
    count, height, width, channels = shape
    residual = np.frombuffer(lzma.decompress(payload), np.uint8)
    if residual.size != count * height * width * channels:
        raise PartsError(f"an image block holds {residual.size} bytes, expected {shape}")
    # Position-major, so that each step reads and writes contiguous (N, 3) slices.
    residual = residual.reshape(shape).transpose(1, 2, 0, 3).astype(np.int16)
    out = np.zeros((height + 1, width + 1, count, channels), np.int16)
    for row in range(height):
        for column in range(width):
            prediction = _med(out[row + 1, column], out[row, column + 1], out[row, column])
            out[row + 1, column + 1] = (residual[row, column] + prediction) & 255
    x = out[1:, 1:].transpose(2, 0, 1, 3)
    images = np.empty(shape, np.uint8)
    images[..., 1] = x[..., 1]
    images[..., 0] = (x[..., 0] + x[..., 1]) & 255
    images[..., 2] = (x[..., 2] + x[..., 1]) & 255
    return images


# --------------------------------------------------------------------------- cutting


def _blocks(arrays: dict, codec: str, block_size: int) -> list[dict]:
    """Every array cut into blocks, each with its payload and its size in a part."""
    blocks = []
    for key in sorted(arrays):
        array = np.ascontiguousarray(arrays[key])
        rows = max(1, len(array))
        for start in range(0, rows, block_size):
            piece = array[start:start + block_size]
            stop = start + len(piece)
            if codec == "xz" and _is_rgb(array):
                payload = np.frombuffer(encode_images(piece), np.uint8)
                size = payload.nbytes
            elif codec == "xz":
                payload, size = piece, piece.nbytes
            else:
                payload, size = piece, len(zlib.compress(piece.tobytes(), 6))
            blocks.append({"key": key, "start": start, "stop": stop, "payload": payload,
                           "size": size + 200})  # + a zip entry's header and .npy header
    return blocks


def _pack(blocks: list[dict], count: int) -> list[list[dict]]:
    """``blocks``, in order, into ``count`` consecutive groups of about equal size."""
    total = sum(block["size"] for block in blocks)
    groups, current, done = [], [], 0
    for block in blocks:
        target = total * (len(groups) + 1) / count
        # Close the group before this block when that lands nearer the target.
        if (current and len(groups) < count - 1
                and abs(done - target) <= abs(done + block["size"] - target)):
            groups.append(current)
            current = []
        current.append(block)
        done += block["size"]
    groups.append(current)
    return groups + [[] for _ in range(count - len(groups))]


def write_parts(arrays: dict, folder, *, max_bytes: int | None = None, count: int | None = None,
                codec: str = "xz", block_size: int = BLOCK_SIZE,
                stem: str = DATASET) -> list[Path]:
    """Cut ``arrays`` into parts under ``folder``: ``count`` of them, or the fewest of at most
    ``max_bytes`` each. Returns their paths, in order.

    Parts of ``stem`` left in ``folder`` by an earlier cut (another count, say) are removed
    first, so the folder holds one consistent set. Raises ``ValueError`` when a single block is
    larger than ``max_bytes``."""
    if codec not in CODECS:
        raise ValueError(f"codec must be one of {CODECS}, got {codec!r}")
    if (count is None) == (max_bytes is None):
        raise ValueError("give count or max_bytes")
    checksum = digest(arrays)
    layout = {"shapes": {key: list(array.shape) for key, array in arrays.items()},
              "dtypes": {key: array.dtype.str for key, array in arrays.items()}}
    blocks = _blocks(arrays, codec, block_size)
    fixed = count is not None
    if not fixed:
        if max(block["size"] for block in blocks) > max_bytes:
            raise ValueError(f"a block of {block_size} rows is larger than {max_bytes} bytes")
        count = max(1, math.ceil(sum(block["size"] for block in blocks) / max_bytes))
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    while True:
        paths = _write(blocks, count, Path(folder), stem, codec, checksum, layout)
        # The block sizes leave out each part's own small arrays: check the files themselves.
        if fixed or max(path.stat().st_size for path in paths) <= max_bytes:
            return paths
        count += 1
        if count > len(blocks):
            raise ValueError(f"parts of at most {max_bytes} bytes do not fit these blocks")


def _write(blocks, count, folder, stem, codec, checksum, layout) -> list[Path]:
    """The parts of ``blocks`` packed ``count`` ways, replacing any earlier cut of ``stem``."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        parsed = parse_part_name(old.name)
        if parsed and parsed[0] == stem:
            old.unlink()
    save = np.savez_compressed if codec == "zlib" else np.savez
    paths = []
    for index, group in enumerate(_pack(blocks, count), start=1):
        part_layout = {**layout, "blocks": [[b["key"], b["start"], b["stop"]] for b in group]}
        path = folder / part_name(stem, index, count)
        temporary = path.with_name(f".{path.name}.tmp")
        with open(temporary, "wb") as handle:
            save(handle, _part=np.array([index, count]), _digest=np.array(checksum),
                 _codec=np.array(codec), _layout=np.array(json.dumps(part_layout)),
                 **{f"b{number}": block["payload"] for number, block in enumerate(group)})
        os.replace(temporary, path)
        paths.append(path)
    return paths


# --------------------------------------------------------------------------- joining


def part_info(path) -> tuple[int, int, str]:
    """``(index, count, digest)`` read from a part (without decompressing its images)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            index, count = (int(value) for value in data["_part"])
            return index, count, str(data["_digest"])
    except Exception as error:  # noqa: BLE001 - a truncated or foreign file
        raise PartsError(f"{path} is not a readable part: {error}") from error


def find_parts(*folders, stem: str = DATASET) -> dict[int, Path]:
    """The parts of ``stem`` in ``folders``, by index (a later folder wins a tie)."""
    found = {}
    for folder in map(Path, folders):
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            parsed = parse_part_name(path.name)
            if parsed and parsed[0] == stem:
                found[parsed[1]] = path
    return found


def stage_parts(source, staging, stem: str = DATASET) -> list[Path]:
    """Move the parts found in ``source`` into ``staging`` (kept between calls on a warm
    machine); staged parts of another preparation (another digest or count) are deleted,
    since the newest carried parts are the set being completed. Returns the moved paths."""
    source, staging = Path(source), Path(staging)
    incoming = find_parts(source, stem=stem)
    if not incoming:
        return []
    infos = {index: part_info(path) for index, path in incoming.items()}
    sets = {(count, checksum) for _, count, checksum in infos.values()}
    if len(sets) > 1:
        raise PartsError(f"the parts in {source} come from different preparations: run "
                         "benchmarks/gpu_prepare.py again and carry one set")
    staging.mkdir(parents=True, exist_ok=True)
    for path in find_parts(staging, stem=stem).values():
        try:
            _, count, checksum = part_info(path)
        except PartsError:
            count, checksum = None, None
        if (count, checksum) not in sets:
            path.unlink()
    moved = []
    for path in incoming.values():
        target = staging / path.name
        temporary = staging / f".{path.name}.tmp"
        shutil.move(str(path), str(temporary))
        os.replace(temporary, target)
        moved.append(target)
    return moved


def missing_parts(staging, stem: str = DATASET) -> tuple[list[int], int | None]:
    """``(missing indices, count)`` of the set staged in ``staging`` (count None: no parts)."""
    parts = find_parts(staging, stem=stem)
    if not parts:
        return [], None
    count = part_info(next(iter(parts.values())))[1]
    return [index for index in range(1, count + 1) if index not in parts], count


def join_parts(paths, expected_shapes: dict | None = None) -> tuple[dict, str]:
    """The arrays of a complete set of parts, and their digest, checked.

    Raises ``PartsError`` when a part is missing, doubled or from another set, or when the
    joined arrays do not have ``expected_shapes`` or the digest the parts carry."""
    infos = {}
    for path in paths:
        index, count, checksum = part_info(path)
        if index in infos:
            raise PartsError(f"part {index} is there twice: {infos[index][2]} and {path}")
        infos[index] = (count, checksum, path)
    if not infos:
        raise PartsError("no parts to join")
    sets = {(count, checksum) for count, checksum, _ in infos.values()}
    if len(sets) > 1:
        raise PartsError("the parts come from different preparations (digest or count differ)")
    (count, checksum), = sets
    missing = [index for index in range(1, count + 1) if index not in infos]
    if missing:
        raise PartsError(f"parts {', '.join(map(str, missing))} of {count} are missing")
    arrays, filled = None, {}
    for index in range(1, count + 1):
        with np.load(infos[index][2], allow_pickle=False) as data:
            codec, layout = str(data["_codec"]), json.loads(str(data["_layout"]))
            if arrays is None:
                arrays = {key: np.empty(shape, np.dtype(layout["dtypes"][key]))
                          for key, shape in layout["shapes"].items()}
                filled = {key: 0 for key in arrays}
            for number, (key, start, stop) in enumerate(layout["blocks"]):
                payload = data[f"b{number}"]
                if codec == "xz" and _is_rgb(arrays[key]):
                    piece = decode_images(payload.tobytes(), (stop - start, *arrays[key].shape[1:]))
                else:
                    piece = payload
                arrays[key][start:stop] = piece
                filled[key] += stop - start
    for key, array in arrays.items():
        if filled[key] != len(array) and array.ndim:
            raise PartsError(f"the parts fill {filled[key]} of {len(array)} rows of {key}")
    for key, shape in (expected_shapes or {}).items():
        actual = arrays[key].shape if key in arrays else None
        if actual != tuple(shape):
            raise PartsError(f"joined {key} has shape {actual}, expected {tuple(shape)}")
    actual_digest = digest(arrays)
    if actual_digest != checksum:
        raise PartsError(f"joined arrays have SHA-256 {actual_digest[:16]}..., the parts say "
                         f"{checksum[:16]}...: a part is damaged; prepare and send them again")
    return arrays, checksum


def assemble(staging, data_dir, stem: str = DATASET, expected_shapes=None) -> Path:
    """Join the parts staged in ``staging`` into ``data_dir/<stem>.npz`` (uncompressed, quick
    to read) and return that path; a file already joined from the same digest is reused."""
    parts = find_parts(staging, stem=stem)
    if not parts:
        raise PartsError(f"no {stem} parts in {staging}")
    data_dir = Path(data_dir)
    target = data_dir / f"{stem}.npz"
    marker = data_dir / f"{stem}.sha256"
    checksum = part_info(next(iter(parts.values())))[2]
    if target.is_file() and marker.is_file() and marker.read_text().strip() == checksum:
        return target
    arrays, checksum = join_parts(list(parts.values()), expected_shapes)
    data_dir.mkdir(parents=True, exist_ok=True)
    temporary = data_dir / f".{stem}.npz.tmp"
    with open(temporary, "wb") as handle:
        np.savez(handle, **arrays)
    os.replace(temporary, target)
    marker.write_text(checksum + "\n")
    return target


def folder_size(paths) -> int:
    """Bytes of the files under ``paths`` (files or folders)."""
    total = 0
    for path in map(Path, paths):
        if path.is_file():
            total += path.stat().st_size
        elif path.is_dir():
            total += sum(item.stat().st_size for item in path.rglob("*") if item.is_file())
    return total
