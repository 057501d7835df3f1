import os
import pickle
from pathlib import Path

import pytest
import torch

from mnv2deploy import mobilenet_v2, weights as W
from mnv2deploy.errors import BadWeightsError, MissingToolError, UsageError
from mnv2deploy.model import build


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MNV2DEPLOY_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def save(state, path):
    torch.save(state, path)
    return path


def test_state_dict_file_roundtrip_gives_same_logits(tmp_path):
    src = build(0.5, 7).eval()
    path = save(src.state_dict(), tmp_path / "w.pth")
    model = mobilenet_v2(width_mult=0.5, num_classes=7, weights=path).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), src(x))


def test_wrapped_checkpoint_is_accepted(tmp_path):
    src = build(0.35, 3)
    path = save({"state_dict": src.state_dict(), "epoch": 3}, tmp_path / "ckpt.pt")
    model = mobilenet_v2(width_mult=0.35, num_classes=3, weights=path)
    assert torch.equal(model.classifier[1].weight, src.classifier[1].weight)


def test_wrong_width_names_the_keys_and_guesses_the_file(tmp_path):
    path = save(build(0.5, 10).state_dict(), tmp_path / "w.pth")
    with pytest.raises(BadWeightsError) as err:
        mobilenet_v2(width_mult=1.0, num_classes=10, weights=path)
    assert "features.0.0.weight" in err.value.message and "wrong shapes" in err.value.message
    assert "width 0.5x" in err.value.hint


def test_missing_and_unexpected_keys_are_named(tmp_path):
    state = build(1.0, 10).state_dict()
    state.pop("classifier.1.bias")
    state["head.extra"] = torch.zeros(1)
    path = save(state, tmp_path / "w.pth")
    with pytest.raises(BadWeightsError, match=r"missing classifier\.1\.bias.*unexpected head\.extra"):
        mobilenet_v2(width_mult=1.0, num_classes=10, weights=path)


def test_truncated_checkpoint(tmp_path):
    path = save(build(0.35, 10).state_dict(), tmp_path / "w.pth")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(BadWeightsError, match="not a readable checkpoint"):
        mobilenet_v2(width_mult=0.35, num_classes=10, weights=path)


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(BadWeightsError):
        W.read_state_dict(path)


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_pickle_that_would_run_code_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"features.0.0.weight": _Payload(str(marker))}, path)
    with pytest.raises(BadWeightsError, match="refused"):
        W.read_state_dict(path)
    assert not marker.exists()
    # a raw (non-zip) pickle too
    raw = tmp_path / "evil.pkl"
    raw.write_bytes(pickle.dumps(_Payload(str(marker))))
    with pytest.raises(BadWeightsError):
        W.read_state_dict(raw)
    assert not marker.exists()


def test_tensor_dict_of_non_tensors_is_refused(tmp_path):
    path = save({"a": 1}, tmp_path / "w.pth")
    with pytest.raises(BadWeightsError, match="state_dict of tensors"):
        W.read_state_dict(path)


def test_imagenet_offline_names_url_cache_path_and_flag(cache, monkeypatch):
    monkeypatch.setattr(W, "IMAGENET_URL", "http://127.0.0.1:9/mobilenet_v2-7ebf99e0.pth")
    spec = W.resolve_weights("imagenet")
    with pytest.raises(MissingToolError) as err:
        W.load_reference(spec)
    text = err.value.one_line()
    assert "127.0.0.1:9/mobilenet_v2-7ebf99e0.pth" in text and str(spec.path) in text and "--weights PATH" in text
    assert str(spec.path).startswith(str(cache))
    assert not spec.path.exists() and not list(spec.path.parent.glob("*partial*"))


def test_imagenet_cache_is_verified_and_reused(cache, monkeypatch, tmp_path):
    spec = W.resolve_weights("imagenet")
    spec.path.parent.mkdir(parents=True)
    src = build(1.0, 1000)
    save(src.state_dict(), spec.path)
    with pytest.raises(BadWeightsError, match="sha256"):
        W.load_reference(spec)  # a file that is not torchvision's
    from mnv2deploy.fileio import sha256_file

    monkeypatch.setattr(W, "IMAGENET_SHA256_PREFIX", sha256_file(spec.path)[:8])
    ref = W.load_reference(spec)
    assert torch.equal(ref.model.features[0][0].weight, src.features[0][0].weight)
    assert ref.spec.contract.resize == 232 and ref.spec.contract.resolution == 224


def test_imagenet_contract_scales_with_resolution():
    spec = W.resolve_weights("imagenet", resolution=128)
    assert (spec.contract.resolution, spec.contract.resize) == (128, 133)


def test_named_weights_reject_other_shapes():
    with pytest.raises(UsageError, match="width"):
        W.resolve_weights("imagenet", width_mult=0.5)
    with pytest.raises(UsageError, match="num_classes"):
        W.resolve_weights("default", num_classes=1000)


def test_unknown_weights_value():
    with pytest.raises(UsageError, match="not 'default'"):
        W.resolve_weights("/no/such/file.pth")


def test_random_weights_are_reproducible():
    a = W.load_reference(W.resolve_weights("random", width_mult=0.35, num_classes=5)).model
    b = W.load_reference(W.resolve_weights("random", width_mult=0.35, num_classes=5)).model
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
