"""The embedded digits benchmarks and DomainBed's in/out split."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dagrad.config.schema import DataConfig
from dagrad.datasets import build
from dagrad.datasets.splits import random_split
from dagrad.utils.errors import ConfigError


def test_random_split_is_disjoint_complete_and_seeded():
    a_in, a_out = random_split(300, 0.2, trial_seed=0, env_index=1)
    assert len(a_out) == 60 and len(a_in) == 240
    assert not set(a_in) & set(a_out) and set(a_in) | set(a_out) == set(range(300))
    again = random_split(300, 0.2, trial_seed=0, env_index=1)
    assert np.array_equal(a_in, again[0]) and np.array_equal(a_out, again[1])
    assert not np.array_equal(a_out, random_split(300, 0.2, trial_seed=1, env_index=1)[1])
    assert not np.array_equal(a_out, random_split(300, 0.2, trial_seed=0, env_index=2)[1])


def test_rotated_digits_environments_and_sizes():
    bundle = build(DataConfig(image_size=16), trial_seed=0)
    assert bundle.suite.env_names == ["rot0", "rot15", "rot30", "rot45", "rot60", "rot75"]
    assert bundle.train_envs == [0, 1, 2, 3, 4] and bundle.test_envs == [5]
    sizes = [len(env) for env in bundle.suite.environments]
    assert sum(sizes) == 1797 and max(sizes) - min(sizes) <= 1  # disjoint slices of all digits
    for i, n in enumerate(sizes):
        assert len(bundle.splits[f"env{i}_out"]) == int(n * 0.2)
        assert len(bundle.splits[f"env{i}_in"]) == n - int(n * 0.2)
    x, y = bundle.splits["env0_in"][0]
    assert x.shape == (1, 16, 16) and 0 <= int(y) < 10
    assert bundle.num_classes == 10 and bundle.input_shape == (1, 16, 16)


def test_rotation_pads_so_no_corner_is_clipped():
    """Rotating by 90 degrees a digit padded as we pad loses no ink."""
    cfg = DataConfig(image_size=24, test_envs=[1], options={"angles": [0, 90]})
    suite = build(cfg, 0).suite
    plain, turned = suite.environments[0].inputs, suite.environments[1].inputs
    # environments hold different digits; compare total ink per image on average
    assert abs(plain.sum((1, 2, 3)).mean() - turned.sum((1, 2, 3)).mean()) / plain.sum((1, 2, 3)).mean() < 0.1
    border = torch.cat([plain[..., 0, :], plain[..., -1, :], plain[..., :, 0], plain[..., :, -1]], -1)
    assert border.abs().max() < 1e-6  # the padding keeps strokes away from the edges


def test_stroke_digits_thickens_strokes():
    suite = build(DataConfig(name="stroke_digits", test_envs=[0], image_size=16), 0).suite
    assert suite.env_names == ["erode1", "plain", "dilate1", "dilate2", "dilate3"]
    ink = [env.inputs.mean().item() for env in suite.environments]
    assert ink == sorted(ink)  # more ink with every step of dilation


def test_batches_are_reproducible_per_epoch_and_differ_across_epochs():
    bundle = build(DataConfig(image_size=12, batch_size=4), 0)
    stream = bundle.training_loaders(steps=2, seed=7)
    first = [y for step in stream.epoch(0) for _, y in step[0]]
    again = [y for step in stream.epoch(0) for _, y in step[0]]
    other = [y for step in stream.epoch(1) for _, y in step[0]]
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not all(torch.equal(a, b) for a, b in zip(first, other))
    assert len(first) == 2 * 5  # steps x training environments


def test_da_setting_gives_unlabelled_target_inputs():
    bundle = build(DataConfig(image_size=12, batch_size=4, setting="da", uda_holdout_fraction=0.25), 0)
    stream = bundle.training_loaders(1, 0)
    labelled, unlabelled, skipped = next(stream.epoch(0))
    assert len(labelled) == 5 and len(unlabelled) == 1 and unlabelled[0].shape == (4, 1, 12, 12)
    assert skipped == 0 and stream.unlabelled_splits == ["env5_uda"]
    # an algorithm that ignores target inputs (ERM, DANN) gets none: nothing is read for it
    labelled, unlabelled, _ = next(bundle.training_loaders(1, 0, unlabelled=False).epoch(0))
    assert len(labelled) == 5 and unlabelled is None


@pytest.mark.parametrize("cfg, message", [
    (DataConfig(test_envs=[6]), "data.test_envs: 6 is not an environment of rotated_digits"),
    (DataConfig(test_envs=[0, 1, 2, 3, 4, 5]), "every environment is held out"),
    (DataConfig(options={"angle": [1]}), "data.options.angle: not an option of rotated_digits; allowed: angles, seed"),
    (DataConfig(split="official"), "has no official split files"),
])
def test_bad_data_config(cfg, message):
    with pytest.raises(ConfigError, match=message):
        build(cfg, 0)


def test_digits_and_rotation_match_scikit_learn_and_torchvision_exactly():
    """dagrad reads the digits and rotates them without importing scikit-learn or torchvision (seconds of
    startup); the images are bit-identical to what those libraries give."""
    TF = pytest.importorskip("torchvision.transforms.functional")
    from sklearn.datasets import load_digits

    from dagrad.datasets.digits import load_digit_images, rotate

    images, labels = load_digit_images()
    reference = load_digits()
    assert np.array_equal(images, reference.images) and np.array_equal(labels, reference.target)
    g = torch.Generator().manual_seed(0)
    for size in (12, 13, 16, 28):
        x = torch.rand(20, 1, size, size, generator=g)
        for angle in (0.0, 15.0, 45.0, 75.0, -33.3, 180.0):
            assert torch.equal(rotate(x, angle), TF.rotate(x, angle, interpolation=TF.InterpolationMode.BILINEAR))


def test_building_the_digits_imports_neither_scikit_learn_nor_torchvision():
    import subprocess
    import sys

    code = ("import sys; from dagrad.config.schema import DataConfig; from dagrad.datasets import build; "
            "build(DataConfig(), 0); print(sorted(m for m in ('sklearn', 'torchvision', 'pandas') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
