"""IDX (MNIST-format) file reader shared by the MNIST-format datasets (a helper, not a plugin)."""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from latentbench.data import Split
from latentbench.errors import LatentBenchError


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (MNIST format), gzipped or not."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise LatentBenchError(f"{path} is not an unsigned-byte IDX file")
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise LatentBenchError(f"{path} is truncated: expected {int(np.prod(dims))} values, found {arr.size}")
    return arr.reshape(dims)


_IDX_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
              "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def _find(root: Path, stem: str) -> Optional[Path]:
    for cand in (root / stem, root / f"{stem}.gz", root / "raw" / stem, root / "raw" / f"{stem}.gz"):
        if cand.exists():
            return cand
    return None


def load_idx_dataset(name: str, split: str, data_root: Optional[str], torchvision_cls: str) -> Split:
    """Find IDX files in ``data_root``, then ``/usr/share/datasets/<name>/``, then try torchvision's
    downloader; if all fail, say how to get the data each way."""
    img_stem, lbl_stem = _IDX_FILES[split]
    roots = []
    if data_root:
        roots += [Path(data_root), Path(data_root) / name]
    if os.environ.get("LATENTBENCH_DATA"):
        roots += [Path(os.environ["LATENTBENCH_DATA"]) / name]
    roots.append(Path("/usr/share/datasets") / name)
    for root in roots:
        ip, lp = _find(root, img_stem), _find(root, lbl_stem)
        if ip and lp:
            x = torch.from_numpy(read_idx(ip).copy()).float().div_(255.0).unsqueeze(1)
            y = torch.from_numpy(read_idx(lp).astype(np.int64))
            return Split(x, y)
    download_root = Path(data_root or os.path.expanduser("~/.cache/latentbench/data"))
    try:
        import torchvision.datasets as tvd

        ds = getattr(tvd, torchvision_cls)(str(download_root), train=(split == "train"), download=True)
        x = ds.data.float().div(255.0).unsqueeze(1)
        return Split(x, ds.targets.long())
    except Exception as e:  # no network, or torchvision missing
        reason = f"{type(e).__name__}: {e}"
    searched = ", ".join(str(r) for r in roots)
    raise LatentBenchError(
        f"dataset '{name}' ({split}) not found. Searched: {searched}; torchvision download failed ({reason}). "
        f"Get it one of three ways: (1) pass --data-root DIR (or data_root in the config) pointing at the IDX files "
        f"({img_stem}[.gz], {lbl_stem}[.gz]); (2) on Debian/Ubuntu `apt-get install dataset-{name}` "
        f"(installs /usr/share/datasets/{name}/); (3) allow network access so torchvision.datasets.{torchvision_cls} can download it.")
