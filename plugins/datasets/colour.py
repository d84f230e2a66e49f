"""``colour-fashion-mnist``: Cemgil et al.'s ColorMNIST construction applied to Fashion-MNIST (docs/datasets.md).

Cemgil et al. ("Adversarially robust representations with smooth encoders", §5) colour each MNIST
digit with one of the seven non-black corners of the RGB cube. Here every image also gets a
background colour, so colour is not a shortcut for "where the object is":

- foreground ``f``: one of the 7 non-black corners of the RGB cube, uniformly;
- background ``b``: one of the 7 corners other than ``f`` (black included), uniformly, so the object
  always differs from its background in at least one channel;
- pixel: ``b + g * (f - b)`` per channel, ``g`` the grey level in [0, 1] (a convex mix: still in [0, 1]).

Both colours of image ``i`` of a split are drawn from (``colour_seed``, split) for the whole split
at once, so an image has the same colours whichever subset loads it. Labels are Fashion-MNIST's
classes; :meth:`ColourFashionMNIST.colours` gives the colour indices (001's colour task).
The grey images are resized before colouring: bilinear weights sum to one, so this equals colouring
then resizing, at a third of the cost.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from latentbench.data import Split, resize
from latentbench.plugins.datasets._idx import check_idx_split, load_idx_dataset
from latentbench.plugins.datasets.mnist import FashionMNIST
from latentbench.seeding import component_generator

#: the corners of the RGB cube; index bits are (r, g, b), so 0 is black and 7 white
CORNERS = torch.tensor([[(i >> 2) & 1, (i >> 1) & 1, i & 1] for i in range(8)], dtype=torch.float32)


def draw_colours(n: int, seed: int, split: str) -> tuple[Tensor, Tensor]:
    """Corner indices (foreground, background) of the ``n`` images of ``split``; never equal."""
    g = component_generator(seed, "colour-fashion-mnist", split)
    fg = torch.randint(1, 8, (n,), generator=g)
    # an offset of 1..7 from the foreground reaches each other corner (black included) once
    bg = (fg + torch.randint(1, 8, (n,), generator=g)) % 8
    return fg, bg


def colourise(grey: Tensor, fg: Tensor, bg: Tensor) -> Tensor:
    """(N, 1, H, W) grey levels in [0, 1] -> (N, 3, H, W): ``b + g * (f - b)`` with corner indices fg, bg."""
    f, b = CORNERS[fg][:, :, None, None], CORNERS[bg][:, :, None, None]
    # in place: the training split at 64x64 is 2.9 GB, and `b + grey * (f - b)` held two such tensors
    # at once (float addition commutes, so the values are the same bit for bit)
    return (grey * (f - b)).add_(b)


class ColourFashionMNIST(FashionMNIST):
    name = "colour-fashion-mnist"
    native_shape = (3, 28, 28)
    source = ("Fashion-MNIST IDX files, coloured per image as Cemgil et al.'s ColorMNIST (foreground and "
              "background RGB-cube corners drawn from colour_seed)")
    option_types = {"colour_seed": int}
    #: the grey dataset whose files are read
    files = "fashion-mnist"

    def _colour_seed(self) -> int:
        return int(self.config.options.get("colour_seed", 0))

    def check_split(self, split: str, download: bool = True) -> Optional[int]:
        return check_idx_split(self.files, split, self.config.data_root, self.torchvision_cls, self.num_classes,
                               self.native_shape[1:], download=download)

    def colours(self, split: str, indices: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
        """Corner indices (foreground, background) of the split's images ``indices`` (all for None)."""
        n = self.check_split(split)
        if n is None:  # files not on disk yet: the split's size comes from loading it
            n = len(self._grey(split, None))
        fg, bg = draw_colours(n, self._colour_seed(), split)
        return (fg, bg) if indices is None else (fg[indices], bg[indices])

    def _grey(self, split: str, indices: Optional[Tensor]) -> Split:
        return load_idx_dataset(self.files, split, self.config.data_root, self.torchvision_cls, indices,
                                self.native_shape[1:])

    def _load_rows(self, split: str, indices: Optional[Tensor]) -> Split:
        s = self._grey(split, indices)
        grey = s.x
        if self.config.image_size and grey.shape[-1] != self.config.image_size:
            grey = resize(grey, self.config.image_size)
        fg, bg = self.colours(split, indices)
        return Split(colourise(grey, fg, bg), s.y)
