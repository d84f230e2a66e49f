"""``image_folder``: a user's own images in torchvision's ImageFolder layout (docs/datasets.md).

``data_root`` holds one folder per class of image files (PNG, JPEG and the other formats torchvision's
ImageFolder reads), of any size and mode::

    data_root/train/<class>/*.png     data_root/test/<class>/*.jpg      (two splits), or
    data_root/<class>/*.png                                             (one folder: a seeded split)

Classes are the sorted folder names (torchvision's ``find_classes``; in the two-split layout both
splits must have the same classes). With one folder, ``test_fraction`` of the images (default 0.2,
drawn once from a fixed seed) form the test split and the rest the train split. Every image is
converted to RGB (``channels: 3``, default) or grey (``channels: 1``), its shorter side resized to
``image_size`` (antialiased bilinear) and centre-cropped to a square, as torchvision's
``Resize(size)`` + ``CenterCrop(size)``; only the images a run uses are decoded.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import torch
from torch import Tensor

from latentbench.data import Dataset, DatasetConfig, DatasetError, Split
from latentbench.errors import ConfigError
from latentbench.seeding import component_generator

#: the side of the square images when the config gives no image_size
DEFAULT_SIZE = 64
LAYOUT = "data_root/<class>/<image> or data_root/train/<class>/<image> and data_root/test/<class>/<image>"


class ImageFolder(Dataset):
    name = "image_folder"
    source = "the user's image files, torchvision ImageFolder layout (class folders of PNG/JPEG files)"
    option_types = {"channels": int, "test_fraction": float}
    TEST_FRACTION = 0.2
    SPLIT_SEED = 0

    def __init__(self, config: DatasetConfig | None = None):
        super().__init__(config)
        size = self.config.image_size or DEFAULT_SIZE
        # per instance: the shape follows the options, the classes the folders
        self.native_shape = (int(self.config.options.get("channels", 3)), size, size)
        self._files: dict[str, list[tuple[str, int]]] = {}
        self.classes: list[str] = []

    @property
    def num_classes(self) -> int:  # the class folders, found on first use
        if not self.classes:
            self._index(self.splits[-1])
        return len(self.classes)

    # -- checks --------------------------------------------------------------------------------------
    def check_config(self, path: str = "dataset") -> None:
        super().check_config(path)
        if self.native_shape[0] not in (1, 3):
            raise ConfigError(f"{path}.options.channels", f"{self.native_shape[0]} channels; image_folder gives RGB "
                              "or grey images", "use channels 3 (RGB) or 1 (grey)")
        f = float(self.config.options.get("test_fraction", self.TEST_FRACTION))
        if not 0.0 < f < 1.0:
            raise ConfigError(f"{path}.options.test_fraction", f"{f} is not a fraction in (0, 1)",
                              "use a fraction such as 0.2")
        if not self.config.data_root:
            raise ConfigError(f"{path}.data_root", "dataset 'image_folder' needs the folder of the images",
                              f"set data_root (or --data-root) to a folder laid out as {LAYOUT}")

    def check_split(self, split: str, download: bool = True) -> Optional[int]:
        return len(self._index(split))

    # -- the file index ------------------------------------------------------------------------------
    def _root(self) -> Path:
        if not self.config.data_root:
            raise DatasetError("dataset 'image_folder' has no data_root",
                               f"set data_root (or --data-root) to a folder laid out as {LAYOUT}")
        root = Path(os.path.expanduser(self.config.data_root))
        if not root.is_dir():
            raise DatasetError(f"dataset 'image_folder': data_root {root} is not a folder",
                               f"point data_root at a folder laid out as {LAYOUT}")
        return root

    def _index(self, split: str) -> list[tuple[str, int]]:
        """(path, class index) of every image of a split, in torchvision's order (class, then path)."""
        if split not in self._files:
            root = self._root()
            if (root / "train").is_dir() or (root / "test").is_dir():
                self._files = {s: self._scan(root / s) for s in self.splits}
                if self._class_names(root / "train") != self._class_names(root / "test"):
                    raise DatasetError(f"dataset 'image_folder': {root}/train and {root}/test have different class "
                                       f"folders ({self._class_names(root / 'train')} vs "
                                       f"{self._class_names(root / 'test')})",
                                       "give both splits the same class folders (an empty one is fine)")
            else:
                self._files = self._split_one_folder(self._scan(root))
        return self._files[split]

    @staticmethod
    def _class_names(folder: Path) -> list[str]:
        return sorted(e.name for e in os.scandir(folder) if e.is_dir()) if folder.is_dir() else []

    def _scan(self, folder: Path) -> list[tuple[str, int]]:
        from torchvision.datasets.folder import IMG_EXTENSIONS, make_dataset

        if not folder.is_dir():
            raise DatasetError(f"dataset 'image_folder': {folder} is missing",
                               f"lay the images out as {LAYOUT}")
        self.classes = self._class_names(folder)
        if not self.classes:
            raise DatasetError(f"dataset 'image_folder': {folder} has no class folders",
                               f"lay the images out as {LAYOUT}")
        try:
            samples = make_dataset(str(folder), {c: i for i, c in enumerate(self.classes)}, IMG_EXTENSIONS,
                                   allow_empty=True)
        except FileNotFoundError as e:  # torchvision's message names the folder and the extensions
            raise DatasetError(f"dataset 'image_folder': {e}", f"lay the images out as {LAYOUT}") from None
        if not samples:
            raise DatasetError(f"dataset 'image_folder': no image files under {folder} "
                               f"(extensions {', '.join(IMG_EXTENSIONS)})", f"lay the images out as {LAYOUT}")
        return samples

    def _split_one_folder(self, samples: list[tuple[str, int]]) -> dict[str, list[tuple[str, int]]]:
        # a fixed permutation, as the digits split: the same folder always gives the same split
        f = float(self.config.options.get("test_fraction", self.TEST_FRACTION))
        n_test = int(round(len(samples) * f))
        if not 0 < n_test < len(samples):
            raise DatasetError(f"dataset 'image_folder': test_fraction {f} of {len(samples)} images leaves a split "
                               "empty", "add images, or use train/ and test/ folders")
        perm = torch.randperm(len(samples), generator=component_generator(self.SPLIT_SEED, "image_folder-split"))
        test, train = perm[:n_test].sort().values, perm[n_test:].sort().values
        return {"test": [samples[i] for i in test.tolist()], "train": [samples[i] for i in train.tolist()]}

    # -- loading -------------------------------------------------------------------------------------
    def _load_rows(self, split: str, indices: Optional[Tensor]) -> Split:
        files = self._index(split)
        rows = range(len(files)) if indices is None else indices.tolist()
        x = torch.stack([load_image(files[i][0], self.native_shape[1], self.native_shape[0]) for i in rows]) \
            if len(rows) else torch.zeros((0, *self.native_shape))
        return Split(x, torch.tensor([files[i][1] for i in rows], dtype=torch.int64))

    def _load(self, split: str) -> Split:
        return self._load_rows(split, None)


def load_image(path: str, size: int, channels: int = 3) -> Tensor:
    """An image file as (channels, size, size) float32 in [0, 1]: shorter side resized to ``size``
    (antialiased bilinear), then centre-cropped, as torchvision's Resize(size) + CenterCrop(size)."""
    from PIL import Image, UnidentifiedImageError
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as TF

    try:
        with Image.open(path) as im:
            im = im.convert("RGB" if channels == 3 else "L")
    except (OSError, UnidentifiedImageError) as e:
        raise DatasetError(f"{path} cannot be read as an image ({e})",
                           "replace or remove the file") from None
    im = TF.center_crop(TF.resize(im, size, interpolation=InterpolationMode.BILINEAR, antialias=True), size)
    return TF.pil_to_tensor(im).float().div_(255.0)
