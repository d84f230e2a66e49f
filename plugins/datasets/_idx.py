"""IDX (MNIST-format) file reader shared by the MNIST-format datasets (a helper, not a plugin).

Every problem with the files (missing, empty, falsely gzipped, truncated, images and labels that do
not pair up, labels outside the classes) is a one-line :class:`~latentbench.data.DatasetError`
naming the file. :func:`check_idx_split` checks a split reading only the image file's header and
the (small) label file; :func:`load_idx_dataset` with ``indices`` converts only those images.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import Tensor

from latentbench.data import DatasetError, Split, check_label_range

_IDX_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
              "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}

#: where torchvision's downloader puts the files when no data_root is given
DOWNLOAD_ROOT = "~/.cache/latentbench/data"

_REPLACE = "replace it with an intact copy of the file (reinstall the dataset package or download it again)"


def _read_bytes(path: Path, limit: Optional[int] = None) -> bytes:
    """The (decompressed) bytes of a file, or its first ``limit`` bytes."""
    gz = str(path).endswith(".gz")
    try:
        with (gzip.open if gz else open)(path, "rb") as f:
            return f.read() if limit is None else f.read(limit)
    except gzip.BadGzipFile:
        raise DatasetError(f"{path} has a .gz name but is not gzip data",
                           "rename it without .gz if it is a plain IDX file, or " + _REPLACE) from None
    except (EOFError, zlib.error) as e:
        raise DatasetError(f"{path} is a damaged or truncated gzip file ({e})", _REPLACE) from None
    except OSError as e:
        raise DatasetError(f"{path} cannot be read ({e.strerror or e})", "check the file's permissions") from None


def _parse_header(data: bytes, path: Path) -> tuple[tuple[int, ...], int]:
    """(dims, offset of the values) of an unsigned-byte IDX file's bytes."""
    if not data:
        raise DatasetError(f"{path} is empty", _REPLACE)
    if len(data) < 4:
        raise DatasetError(f"{path} is too short to be an IDX file ({len(data)} bytes)", _REPLACE)
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise DatasetError(f"{path} is not an unsigned-byte IDX file", "point the dataset at the MNIST-format IDX files")
    if len(data) < 4 + 4 * ndim:
        raise DatasetError(f"{path} is truncated inside its header", _REPLACE)
    return struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim]), 4 + 4 * ndim


def read_idx_header(path: Path) -> tuple[int, ...]:
    """The dimensions an IDX file declares, reading only its header."""
    head = _read_bytes(path, 4)
    ndim = head[3] if len(head) == 4 else 0
    return _parse_header(_read_bytes(path, 4 + 4 * ndim), path)[0]


def check_idx_length(path: Path, dims: tuple[int, ...]) -> None:
    """Check that a file holds the values its header declares, without decompressing it when the size
    on disk (or a gzip file's recorded length) already agrees."""
    expected = 4 + 4 * len(dims) + int(np.prod(dims))
    try:
        if str(path).endswith(".gz"):
            with open(path, "rb") as f:  # a gzip member ends with its uncompressed length mod 2**32
                f.seek(-4, os.SEEK_END)
                agrees = struct.unpack("<I", f.read(4))[0] == expected % 2**32
        else:
            agrees = path.stat().st_size == expected
    except OSError:
        agrees = False
    if not agrees:
        read_idx(path)  # raises with the exact count (and settles a multi-member gzip file)


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (MNIST format), gzipped or not."""
    data = _read_bytes(path)
    dims, offset = _parse_header(data, path)
    arr = np.frombuffer(data, dtype=np.uint8, offset=offset)
    expected = int(np.prod(dims))
    if arr.size < expected:
        raise DatasetError(f"{path} is truncated: expected {expected} values, found {arr.size}", _REPLACE)
    if arr.size > expected:
        raise DatasetError(f"{path} has {arr.size - expected} bytes after the {expected} values its header declares",
                           _REPLACE)
    return arr.reshape(dims)


def _find(root: Path, stem: str) -> Optional[Path]:
    for cand in (root / stem, root / f"{stem}.gz", root / "raw" / stem, root / "raw" / f"{stem}.gz"):
        if cand.is_file():
            return cand
    return None


def _search_roots(name: str, data_root: Optional[str], torchvision_cls: str) -> list[Path]:
    if data_root:  # an explicit folder is honoured: no fallback to other folders
        return [Path(data_root), Path(data_root) / name]
    roots = []
    if os.environ.get("LATENTBENCH_DATA"):
        roots.append(Path(os.environ["LATENTBENCH_DATA"]) / name)
    roots.append(Path("/usr/share/datasets") / name)
    roots.append(Path(os.path.expanduser(DOWNLOAD_ROOT)) / torchvision_cls)  # a previous download
    return roots


def _locate(name: str, split: str, data_root: Optional[str], torchvision_cls: str) -> Optional[tuple[Path, Path]]:
    img_stem, lbl_stem = _IDX_FILES[split]
    for root in _search_roots(name, data_root, torchvision_cls):
        ip, lp = _find(root, img_stem), _find(root, lbl_stem)
        if ip and lp:
            return ip, lp
    if data_root:
        raise DatasetError(
            f"dataset '{name}' ({split}): data_root {data_root} holds no {img_stem}[.gz] and {lbl_stem}[.gz] "
            f"(searched {data_root}, {Path(data_root) / name} and their raw/ folders)",
            f"point --data-root (data_root in the config) at the folder holding the IDX files, or remove it to use "
            f"/usr/share/datasets/{name}/ (apt-get install dataset-{name}) or torchvision's download")
    return None


def _not_found(name: str, split: str, data_root: Optional[str], torchvision_cls: str, reason: str) -> DatasetError:
    img_stem, lbl_stem = _IDX_FILES[split]
    searched = ", ".join(str(r) for r in _search_roots(name, data_root, torchvision_cls))
    return DatasetError(
        f"dataset '{name}' ({split}) not found. Searched: {searched}; {reason}",
        f"get it one of three ways: (1) pass --data-root DIR (or data_root in the config) pointing at the IDX files "
        f"({img_stem}[.gz], {lbl_stem}[.gz]); (2) on Debian/Ubuntu `apt-get install dataset-{name}` "
        f"(installs /usr/share/datasets/{name}/); (3) allow network access so torchvision.datasets.{torchvision_cls} "
        f"can download it")


def _check_pair(images: tuple[int, ...], labels: tuple[int, ...], ip: Path, lp: Path,
                image_shape: Optional[tuple[int, ...]]) -> int:
    if len(images) != 3:
        raise DatasetError(f"{ip} holds an array of {len(images)} dimensions, not images (N, H, W)",
                           "point the dataset at its images-idx3-ubyte file")
    if len(labels) != 1:
        raise DatasetError(f"{lp} holds an array of {len(labels)} dimensions, not labels (N,)",
                           "point the dataset at its labels-idx1-ubyte file")
    if image_shape is not None and tuple(images[1:]) != tuple(image_shape):
        raise DatasetError(f"{ip} holds {images[1]}x{images[2]} images; this dataset's are "
                           f"{'x'.join(map(str, image_shape))}", "use the files of this dataset")
    if images[0] != labels[0]:
        raise DatasetError(f"{lp} has {labels[0]} labels but {ip} has {images[0]} images",
                           "use the image and label files of the same split, both intact")
    return images[0]


def check_idx_split(name: str, split: str, data_root: Optional[str], torchvision_cls: str,
                    num_classes: Optional[int] = None, image_shape: Optional[tuple[int, ...]] = None,
                    download: bool = True) -> Optional[int]:
    """The number of examples of a split, its files checked (image header, every label); None when
    the files are not on disk and a load would try to download them (``download``)."""
    found = _locate(name, split, data_root, torchvision_cls)
    if found is None:
        if download:
            return None
        raise _not_found(name, split, data_root, torchvision_cls, "a load would try torchvision's download")
    ip, lp = found
    labels = read_idx(lp)
    dims = read_idx_header(ip)
    n = _check_pair(dims, labels.shape, ip, lp, image_shape)
    check_idx_length(ip, dims)
    if num_classes is not None and n:
        check_label_range(int(labels.min()), int(labels.max()), num_classes, str(lp))
    return n


def load_idx_dataset(name: str, split: str, data_root: Optional[str], torchvision_cls: str,
                     indices: Optional[Tensor] = None, image_shape: Optional[tuple[int, ...]] = None) -> Split:
    """Find IDX files in ``data_root`` (only there, when given), else ``/usr/share/datasets/<name>/``,
    else try torchvision's downloader; if all fail, say how to get the data each way. ``indices``:
    only those examples are converted to float."""
    found = _locate(name, split, data_root, torchvision_cls)
    if found is not None:
        ip, lp = found
        images, labels = read_idx(ip), read_idx(lp)
        _check_pair(images.shape, labels.shape, ip, lp, image_shape)
    else:
        images, labels = _download(name, split, data_root, torchvision_cls)
    # select before converting: the float copy is of the chosen images only (same values); the
    # selection is a writable copy, as torch wants, and so is .copy() of the read-only file buffer
    images, labels = (images.copy(), labels) if indices is None else (images[indices.numpy()], labels[indices.numpy()])
    x = torch.from_numpy(images).float().div_(255.0).unsqueeze(1)
    return Split(x, torch.from_numpy(labels.astype(np.int64)))


def _download(name: str, split: str, data_root: Optional[str], torchvision_cls: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        import torchvision.datasets as tvd

        ds = getattr(tvd, torchvision_cls)(os.path.expanduser(DOWNLOAD_ROOT), train=(split == "train"), download=True)
        return ds.data.numpy(), ds.targets.numpy()
    except Exception as e:  # no network, or torchvision missing
        raise _not_found(name, split, data_root, torchvision_cls,
                         f"torchvision download failed ({type(e).__name__}: {' '.join(str(e).split())})") from None
