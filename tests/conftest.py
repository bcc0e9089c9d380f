"""Shared test helpers: paths to ../shared/data (skip cleanly where absent) and tiny generated models."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.helpers.data import data_path, data_root

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = data_root()  # $EDGEDET_DATA, else ../shared/data (tools/fetch_data.py fills it)

# The data-path helper every test uses (it skips naming the file and the fetch command when data is missing).
shared_path = data_path


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """mount(size_kb, read_only=False) -> a fresh tmpfs (root on Linux only, else skip); unmounted after."""
    mounted: list[Path] = []

    def mount(size_kb: int, read_only: bool = False) -> Path:
        if not sys.platform.startswith("linux") or os.geteuid() != 0:
            pytest.skip("mounting a tiny tmpfs needs root on Linux")
        target = tmp_path / f"fs{len(mounted)}"
        target.mkdir()
        opts = f"size={size_kb}k" + (",ro" if read_only else "")
        proc = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(target)], capture_output=True, text=True
        )
        if proc.returncode != 0:
            pytest.skip(f"cannot mount tmpfs here: {proc.stderr.strip()}")
        mounted.append(target)
        return target

    yield mount
    for target in mounted:
        subprocess.run(["umount", "-l", str(target)], capture_output=True)
