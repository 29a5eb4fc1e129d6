"""Shared by the fidelity tests: the Node packages, installed from the npm registry once a session."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

NODE_PACKAGES = ("ws", "winston", "pino", "bunyan")


@pytest.fixture(scope="session")
def node_modules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ws, winston, pino and bunyan in a temporary directory. If npm cannot install them the Node
    cases fail (in CI too) rather than skip: npm is on every machine."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is not installed: the Node fidelity servers and corpus need it")
    prefix = tmp_path_factory.mktemp("node")
    done = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--prefix", str(prefix), *NODE_PACKAGES],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        pytest.fail(f"npm install {' '.join(NODE_PACKAGES)} failed:\n{done.stderr[-2000:]}")
    return prefix / "node_modules"
