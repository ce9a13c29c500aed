"""Fixtures for `bench run` tests: tiny replicas and a fake forward (a fixed function of the image)."""

import json

import numpy as np
import pytest
import torch

from maskbench.benchmark.run import RunConfig
from maskbench.model import Mask2FormerConfig, build_model_with_backbone
from maskbench.model.resnet import ResNet
from maskbench.datasets.replica import make

#: Cityscapes-like sizes so every scorer runs with its default hyperparameters (Maskomaly ids < 100, K = 19).
QUERIES, CLASSES = 100, 20
ALL_SCORERS = ("msp", "rba", "eam", "aem", "maskomaly", "mask2anomaly")
_gen = torch.Generator().manual_seed(1234)
_MASK_W = torch.randn(QUERIES, 3, generator=_gen) * 8
_MASK_B = torch.randn(QUERIES, 1, 1, generator=_gen) * 2
_CLASS_W = torch.randn(QUERIES, CLASSES, 3, generator=_gen) * 6
_CLASS_B = torch.randn(QUERIES, CLASSES, generator=_gen) * 2


def fake_forward(image):
    """``image`` uint8 (H, W, 3) -> (class logits [Q, K+1], mask logits [Q, H, W]), deterministic, not flip-symmetric."""
    x = torch.from_numpy(np.array(image, dtype=np.float32)) / 255 - 0.5
    h, w = x.shape[:2]
    ramp = torch.linspace(-1, 1, w).expand(h, w)  # breaks left-right symmetry
    masks = torch.einsum("qc,hwc->qhw", _MASK_W, x) + _MASK_B + ramp
    classes = torch.einsum("qkc,c->qk", _CLASS_W, x.mean(dim=(0, 1))) + _CLASS_B
    return classes, masks


class CountingForward:
    """``fake_forward`` that counts its calls and raises ``KeyboardInterrupt`` on call number ``fail_at``."""

    def __init__(self, fail_at=None):
        self.calls, self.fail_at = 0, fail_at

    def __call__(self, image):
        self.calls += 1
        if self.fail_at is not None and self.calls == self.fail_at:
            raise KeyboardInterrupt("simulated crash")
        return fake_forward(image)


def never_called(image):
    raise AssertionError("the forward must not be called")


FAKE_CHECKPOINT = {"path": "fake-forward", "sha256": "f" * 64, "config": {"fake": True}}


@pytest.fixture(scope="session")
def replicas(tmp_path_factory):
    root = tmp_path_factory.mktemp("replicas")
    return {name: make(name, root / name, frames=3, seed=7).root for name in ("smiyc-ra21", "smiyc-ro21")}


def config(replicas, out, dataset="smiyc-ra21", **changes):
    base = dict(dataset=dataset, root=replicas[dataset], out=out, scorers=ALL_SCORERS, workers=1, command=["test"])
    base.update(changes)
    return RunConfig(**base)


def comparable(results):
    """The result entries without run metadata (timestamps, paths)."""
    return json.loads(json.dumps(results["results"]))


@pytest.fixture
def kit(replicas):
    """Helpers for the tests (conftest modules are not importable under --import-mode=importlib)."""
    from types import SimpleNamespace

    return SimpleNamespace(
        fake_forward=fake_forward, CountingForward=CountingForward, never_called=never_called,
        checkpoint=lambda: dict(FAKE_CHECKPOINT), replicas=replicas, ALL_SCORERS=ALL_SCORERS,
        config=lambda out, **changes: config(replicas, out, **changes), comparable=comparable,
    )


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A random-weight R50 Mask2Former (width 32, 7 queries, 19 classes) saved as a bare .pth state dict."""
    cfg = Mask2FormerConfig(backbone="resnet", num_classes=19, num_queries=7, dec_layers=3, hidden_dim=32, nheads=8,
                            dim_feedforward=48, conv_dim=32, mask_dim=32, enc_layers=2, enc_nheads=8,
                            enc_dim_feedforward=64)
    model = build_model_with_backbone(cfg, ResNet(depth=50, norm="FrozenBN", stem_channels=16, res2_channels=32))
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, t in list(model.named_parameters()) + list(model.named_buffers()):
            if t.is_floating_point():
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5 if name.endswith("running_var")
                        else torch.randn(t.shape, generator=gen) * 0.2)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pth"
    torch.save(model.state_dict(), path)
    return path
