"""Fixtures of the miniature-world tests: one small world per session, generated into a temp cache."""

import hashlib

import pytest

from maskbench.datasets.world import WorldConfig, ensure_world

SMALL = WorldConfig(seed=7, train=6, val=4, anomaly=6, obstacle=6, streethazards=6)
ALL_SPLITS = ("train", "val", "anomaly", "obstacle", "streethazards")


@pytest.fixture(scope="session")
def small_world(tmp_path_factory):
    """Every split of :data:`SMALL`, generated once."""
    return ensure_world(ALL_SPLITS, config=SMALL, cache=tmp_path_factory.mktemp("cache"), workers=1)


def tree_hashes(root):
    """``{relative path: sha256}`` of every file under ``root`` except the lock file."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != ".lock"}


@pytest.fixture
def hashes():
    return tree_hashes
