"""Shared by the state tests that damage, check and reindex a stored chain: one chain
built per module, and a fresh copy of it for each test."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.framework import stored_chain as sc


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> sc.StoredChain:
    return sc.build(tmp_path_factory.mktemp("pristine") / "chain")


@pytest.fixture
def stored(pristine: sc.StoredChain, tmp_path: Path) -> sc.StoredChain:
    """A copy of the module's chain that the test may damage."""
    return sc.copy(pristine, tmp_path / "chain")
