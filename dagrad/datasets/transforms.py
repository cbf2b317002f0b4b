"""DomainBed's image transforms: augmentation for training environments, a plain resize for the rest."""

from __future__ import annotations

from torchvision import transforms as T

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_SIZE = 224  # DomainBed's input size


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
