"""Fixtures shared by every test folder."""

import pytest
import torch


@pytest.fixture
def one_thread():
    """Torch on one thread for the test: CPU kernels reduce in a thread-count dependent order, and the runs compared
    with (subprocesses, torchrun ranks) use one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
