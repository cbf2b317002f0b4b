"""Fashion-MNIST and DomainBed's two MNIST constructions on it, built from tiny IDX sets the tests write
(and from the real files when Debian's dataset-fashion-mnist is installed)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from helpers.fashionfiles import write_set

from dagrad.config.schema import DataConfig
from dagrad.datasets import build, fashion, fashion_source
from dagrad.datasets.check import check
from dagrad.datasets.digits import rotate
from dagrad.utils.errors import ConfigError, DataError


@pytest.fixture(autouse=True)
def _no_system_copy(monkeypatch, tmp_path_factory):
    """The tests see only the files they write, never an installed package's."""
    monkeypatch.setattr(fashion, "DEBIAN_DIR", tmp_path_factory.mktemp("no-debian-copy"))


@pytest.fixture(scope="module")
def big_set(tmp_path_factory):
    """6,000 images: 2,000 per colored environment, enough for binomial rates within a few points."""
    return write_set(tmp_path_factory.mktemp("big"), 5400, 600)


def _suite(name, root, **options):
    return build(DataConfig(name=name, root=str(root), test_envs=[0], options=options), trial_seed=0).suite


def test_the_files_are_found_in_root_fashion_mnist_in_root_or_in_debians_folder(tmp_path, monkeypatch):
    write_set(tmp_path / "a" / "fashion_mnist")
    write_set(tmp_path / "b", gz=False)
    assert fashion.locate(tmp_path / "a") == tmp_path / "a" / "fashion_mnist"
    assert fashion.locate(tmp_path / "b") == tmp_path / "b"
    monkeypatch.setattr(fashion, "DEBIAN_DIR", write_set(tmp_path / "debian"))
    assert fashion.locate(tmp_path / "empty") == fashion.locate(None) == tmp_path / "debian"
    (tmp_path / "b" / "t10k-images-idx3-ubyte").unlink()
    with pytest.raises(DataError, match="holds only some Fashion-MNIST files; missing: t10k-images-idx3-ubyte"):
        fashion.locate(tmp_path / "b")


def test_no_files_anywhere_says_how_to_get_them(tmp_path):
    with pytest.raises(DataError, match=r"Fashion-MNIST not found \(looked in .*apt-get install dataset-fashion-mnist"
                                        r".*dagrad data download fashion_mnist"):
        _suite("fashion_mnist", tmp_path)


def test_fashion_mnist_is_the_publishers_two_splits(tmp_path):
    write_set(tmp_path, 60, 20)
    suite = _suite("fashion_mnist", tmp_path)
    assert suite.env_names == ["train", "test"] and [len(e) for e in suite.environments] == [60, 20]
    x = suite.environments[0].load(3)
    assert x.dtype == torch.float32 and x.shape == (1, 28, 28) and 0 < float(x.max()) <= 1.0
    assert suite.class_names[0] == "T-shirt/top" and suite.num_classes == 10


def test_rotated_deals_all_images_round_robin_into_six_rotated_environments(tmp_path):
    write_set(tmp_path, 50, 16)  # 66 images: 11 per environment
    suite = _suite("rotated_fashion_mnist", tmp_path)
    assert suite.env_names == ["0", "15", "30", "45", "60", "75"] and suite.input_shape == (1, 28, 28)
    assert [len(e) for e in suite.environments] == [11] * 6
    plain = _suite("rotated_fashion_mnist", tmp_path, angles=[0] * 6)  # the same deal, nothing rotated
    originals = torch.cat([e.inputs for e in plain.environments])
    assert sorted(originals.sum((1, 2, 3)).tolist()) == sorted(  # every image exactly once
        torch.cat([e.load_many(range(len(e))) * 255 for e in plain.environments]).round().sum((1, 2, 3)).tolist())
    assert len({tuple(x.flatten().tolist()) for x in originals}) == 66
    for env, base, angle in zip(suite.environments, plain.environments, [0, 15, 30, 45, 60, 75]):
        assert np.array_equal(env.labels, base.labels)
        expected = rotate(base.inputs.float(), angle).round().clamp(0, 255).to(torch.uint8)
        assert torch.equal(env.inputs, expected)
        if angle:
            assert not torch.equal(env.inputs, base.inputs)
    other_seed = _suite("rotated_fashion_mnist", tmp_path, angles=[0] * 6, seed=1)
    assert not torch.equal(other_seed.environments[0].inputs, plain.environments[0].inputs)


def test_a_rotation_turns_the_image_counter_clockwise_by_its_angle(tmp_path):
    write_set(tmp_path, 10, 2)
    suite = _suite("rotated_fashion_mnist", tmp_path, angles=[0, 90])
    turned = suite.environments[1].inputs
    plain = _suite("rotated_fashion_mnist", tmp_path, angles=[0, 0]).environments[1].inputs
    assert torch.equal(turned, torch.rot90(plain, 1, dims=(2, 3)))  # 90 degrees maps pixel centres onto centres


def test_max_per_environment_keeps_the_first_images_of_each(tmp_path):
    write_set(tmp_path, 50, 16)
    full, cut = _suite("rotated_fashion_mnist", tmp_path), _suite("rotated_fashion_mnist", tmp_path,
                                                                  max_per_environment=4)
    assert [len(e) for e in cut.environments] == [4] * 6
    assert torch.equal(cut.environments[2].inputs, full.environments[2].inputs[:4])


def _within(rate: float, p: float, n: int) -> bool:
    """`rate` within 4 binomial standard deviations of p (a false alarm about once in 16,000 checks)."""
    return abs(rate - p) <= 4 * math.sqrt(p * (1 - p) / n)


def test_colored_environments_have_the_stated_label_noise_and_colour_correlation(big_set):
    suite = _suite("colored_fashion_mnist", big_set)
    assert suite.env_names == ["+90%", "+80%", "-90%"] and suite.num_classes == 2
    assert suite.input_shape == (2, 28, 28) and [len(e) for e in suite.environments] == [2000] * 3
    for env, flip in zip(suite.environments, [0.1, 0.2, 0.9]):
        x = env.inputs
        ink = x.flatten(2).sum(-1) > 0  # (N, 2): which channel holds the image
        assert bool((ink.sum(1) == 1).all())  # exactly one channel, the other zeroed
        colour = ink[:, 1].long().numpy()
        assert np.array_equal(colour, env.colors)
        clean = np.isin(env.classes, [0, 1, 2, 3, 4]).astype(np.int64)
        noise, disagree = float((env.labels != clean).mean()), float((colour != env.labels).mean())
        assert _within(noise, 0.25, len(env)) and _within(disagree, flip, len(env)), (env.name, noise, disagree)
        grey = x.max(1).values  # the coloured image is the grey one in its channel
        assert torch.equal(grey[0], x[0, colour[0]])


def test_colored_options_change_the_split_and_the_rates(tmp_path):
    write_set(tmp_path, 300, 60)
    suite = _suite("colored_fashion_mnist", tmp_path, colors=[0.5, 0.0], label_noise=0.0, positive_classes=[9])
    assert suite.env_names == ["+50%", "+100%"]
    env = suite.environments[1]
    assert np.array_equal(env.labels, (env.classes == 9).astype(np.int64)) and np.array_equal(env.colors, env.labels)
    with pytest.raises(ConfigError, match="data.options.positive_classes"):
        _suite("colored_fashion_mnist", tmp_path, positive_classes=list(range(10)))
    with pytest.raises(ConfigError, match="data.options.colors"):
        _suite("colored_fashion_mnist", tmp_path, colors=[0.1, 1.5])


def test_image_size_other_than_28_is_refused(tmp_path):
    write_set(tmp_path)
    with pytest.raises(ConfigError, match="data.image_size: rotated_fashion_mnist is 28x28"):
        build(DataConfig(name="rotated_fashion_mnist", root=str(tmp_path), image_size=32), 0)


def test_check_counts_the_histogram_and_says_recompressed_files_cannot_be_md5_checked(tmp_path, monkeypatch):
    write_set(tmp_path, 60, 20)
    report = check("fashion_mnist", tmp_path)
    assert not report.ok and "train: per-class counts differ from 6,000 each" in report.format()
    monkeypatch.setattr(fashion_source, "COUNTS", {"train": 60, "test": 20})
    monkeypatch.setattr(fashion_source, "PER_CLASS", {"train": 6, "test": 2})
    report = check("rotated_fashion_mnist", tmp_path)
    text = report.format()
    assert report.ok and "[ok] train: 60 images found, expected 60" in text and "test 2 in each of the 10" in text
    assert "cannot be checked against the publisher's MD5s" in text
    assert "rotated_fashion_mnist deals these 80 images into 6 environments (0, 15, 30, 45, 60, 75) of 14 or 13" in text
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    write_set(tmp_path / "plain", 60, 20, gz=False)
    assert "uncompressed, so they cannot be checked against the publisher's MD5s" in check(
        "fashion_mnist", tmp_path / "plain").format()


@pytest.mark.parametrize("name, test_env, envs", [("rotated_fashion_mnist", 5, ["0", "15", "30", "45", "60", "75"]),
                                                  ("colored_fashion_mnist", 2, ["+90%", "+80%", "-90%"])])
def test_a_tiny_training_run_on_each_benchmark(tmp_path, name, test_env, envs):
    import dagrad

    write_set(tmp_path / "data" / "fashion_mnist", 300, 60)
    run = dagrad.train(f"datasets/{name}", out=tmp_path / name, progress=False, epochs=1, steps_per_epoch=2,
                       **{"data.root": str(tmp_path / "data"), "data.test_envs": [test_env], "data.batch_size": 8,
                          "eval_mode": "fast"})
    assert run.complete and run.epochs["updates"].tolist() == [2]
    assert run.header["config"]["network"]["name"] == "mnist_cnn"
    assert 0.0 <= run.summary["ood_acc"] <= 1.0 and 0.0 <= run.summary["val_acc"] <= 1.0
    assert f"env{test_env}_in_acc" in run.epochs and f"env{test_env}_out_acc" in run.epochs
    data = run.header["data"]
    assert data["environments"] == envs and data["split_sizes"][f"env{test_env}_out"] == 360 // len(envs) // 5


REAL = fashion.DEBIAN_DIR


@pytest.mark.skipif(not all(fashion.file_path(REAL, s) for p in fashion.FILES.values() for s in p),
                    reason=f"Fashion-MNIST is not installed in {REAL} (apt-get install dataset-fashion-mnist)")
def test_the_installed_files_have_the_published_counts_and_histogram(monkeypatch):
    monkeypatch.setattr(fashion, "DEBIAN_DIR", REAL)
    report = check("fashion_mnist", REAL)
    assert report.ok, report.format()
    assert [(e.name, e.found) for e in report.environments] == [("train", 60_000), ("test", 10_000)]
    assert "train 6,000 in each of the 10 classes, test 1,000" in report.format()


@pytest.mark.slow
@pytest.mark.skipif(not all(fashion.file_path(REAL, s) for p in fashion.FILES.values() for s in p),
                    reason=f"Fashion-MNIST is not installed in {REAL} (apt-get install dataset-fashion-mnist)")
def test_both_benchmarks_deal_all_70000_installed_images(monkeypatch):
    monkeypatch.setattr(fashion, "DEBIAN_DIR", REAL)
    rotated = build(DataConfig(name="rotated_fashion_mnist", test_envs=[5]), 0).suite
    assert [len(e) for e in rotated.environments] == [11_667] * 4 + [11_666] * 2
    assert np.bincount(np.concatenate([e.labels for e in rotated.environments])).tolist() == [7_000] * 10
    colored = build(DataConfig(name="colored_fashion_mnist", test_envs=[2]), 0).suite
    assert [len(e) for e in colored.environments] == [23_334, 23_333, 23_333]
    for env, flip in zip(colored.environments, [0.1, 0.2, 0.9]):
        clean = np.isin(env.classes, [0, 1, 2, 3, 4]).astype(np.int64)
        assert _within(float((env.labels != clean).mean()), 0.25, len(env))
        assert _within(float((env.colors != env.labels).mean()), flip, len(env))
