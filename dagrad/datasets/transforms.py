"""DomainBed's image transforms: augmentation for training environments, a plain resize for the rest."""

from __future__ import annotations

from typing import Optional

from torchvision import transforms as T

from dagrad.errors import ConfigError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_SIZE = 224


def image_size(cfg_size: Optional[int]) -> int:
    size = DEFAULT_SIZE if cfg_size is None else int(cfg_size)
    if size < 8:
        raise ConfigError(f"data.image_size: must be at least 8 pixels for image datasets, got {size}")
    return size


def train_transform(size: int = DEFAULT_SIZE) -> T.Compose:
    """RandomResizedCrop(scale 0.7-1), horizontal flip, ColorJitter(0.3 x4), RandomGrayscale(0.1), ImageNet
    normalisation: DomainBed's `data_augmentation` transform for the training environments."""
    return T.Compose([
        T.RandomResizedCrop(size, scale=(0.7, 1.0)),
        T.RandomHorizontalFlip(),
        T.ColorJitter(0.3, 0.3, 0.3, 0.3),
        T.RandomGrayscale(p=0.1),
        T.ToTensor(),
        T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])


def eval_transform(size: int = DEFAULT_SIZE) -> T.Compose:
    """Resize to size x size (no crop, aspect ratio not kept), ImageNet normalisation, as DomainBed."""
    return T.Compose([T.Resize((size, size)), T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
