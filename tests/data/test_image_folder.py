import numpy as np
import pytest
from PIL import Image

from mnv2deploy.contract import InputContract
from mnv2deploy.data import load_dataset, load_embedded, load_image_folder, preprocess
from mnv2deploy.errors import BadDataError
from mnv2deploy.weights import resolve_weights

CONTRACT = InputContract(resolution=24, resize=28, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), labels=("cat", "dog"))


def write_folder(root, per_class=2, size=(40, 30)):
    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        (root / cls).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(root / cls / f"{i}.png")
    return root


def test_preprocess_resizes_crops_and_normalizes():
    img = Image.new("RGB", (80, 40), (255, 0, 128))
    x = preprocess(img, CONTRACT)
    assert x.shape == (3, 24, 24) and x.dtype == np.float32
    np.testing.assert_allclose(x[:, 12, 12], [(1 - 0.5) / 0.25, (0 - 0.5) / 0.25, (128 / 255 - 0.5) / 0.25], atol=1e-5)


def test_folder_loads_with_labels_in_model_order(tmp_path):
    batch = load_image_folder(write_folder(tmp_path / "d"), CONTRACT)
    assert batch.images.shape == (4, 3, 24, 24)
    assert batch.labels.tolist() == [0, 0, 1, 1]
    assert batch.class_names == ("cat", "dog")


@pytest.mark.parametrize("mode", ["L", "RGBA", "CMYK", "P", "I;16", "1"])
def test_any_image_mode_becomes_rgb(tmp_path, mode):
    root = write_folder(tmp_path / "d", per_class=1)
    img = Image.new("RGB", (33, 45), (10, 200, 30)).convert(mode) if mode != "I;16" else \
        Image.fromarray(np.full((45, 33), 40000, dtype=np.uint16))
    img.save(root / "cat" / ("odd.jpg" if mode == "CMYK" else "odd.png"))
    batch = load_image_folder(root, CONTRACT)
    assert batch.images.shape == (3, 3, 24, 24) and np.isfinite(batch.images).all()
    if mode == "I;16":  # 40000/65535 of full scale -> 155/255, not clipped to white
        assert batch.images[1].mean() == pytest.approx((155 / 255 - 0.5) / 0.25, abs=0.02)


def test_samples_spread_over_classes(tmp_path):
    batch = load_image_folder(write_folder(tmp_path / "d", per_class=5), CONTRACT, samples=2)
    assert batch.labels.tolist() == [0, 1]


@pytest.mark.parametrize("case", ["missing", "empty", "no_classes", "no_images", "corrupt", "zero_byte"])
def test_broken_folders_give_one_clear_error(tmp_path, case):
    root = tmp_path / "d"
    if case == "empty":
        root.mkdir()
    elif case == "no_classes":
        root.mkdir()
        Image.new("RGB", (8, 8)).save(root / "loose.png")
    elif case == "no_images":
        (root / "cat").mkdir(parents=True)
        (root / "cat" / "readme.txt").write_text("x")
    elif case in ("corrupt", "zero_byte"):
        write_folder(root)
        (root / "dog" / "bad.jpg").write_bytes(b"" if case == "zero_byte" else b"\xff\xd8\xff garbage")
    with pytest.raises(BadDataError) as err:
        load_image_folder(root, CONTRACT)
    assert "\n" not in err.value.one_line()
    if case in ("corrupt", "zero_byte"):
        assert "bad.jpg" in err.value.message


def test_label_set_that_does_not_match_the_model(tmp_path):
    root = write_folder(tmp_path / "d")
    (root / "horse").mkdir()
    Image.new("RGB", (8, 8)).save(root / "horse" / "h.png")
    with pytest.raises(BadDataError, match="horse"):
        load_image_folder(root, CONTRACT)


def test_decompression_bomb_is_refused(tmp_path):
    root = write_folder(tmp_path / "d", per_class=1)
    Image.new("L", (9000, 9000)).save(root / "cat" / "huge.png", optimize=False)
    with pytest.raises(BadDataError, match="huge.png"):
        load_image_folder(root, CONTRACT)


def test_embedded_sets_are_real_cifar10():
    contract = resolve_weights("default").contract
    ev, cal = load_embedded("eval", contract), load_embedded("calib", contract, samples=20)
    assert len(ev) == 500 and len(cal) == 20
    assert np.bincount(ev.labels).tolist() == [50] * 10
    assert sorted(set(cal.labels.tolist())) == list(range(10))
    assert load_dataset(None, contract.at_resolution(64), 4).images.shape == (4, 3, 64, 64)
