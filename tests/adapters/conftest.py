"""Fixtures for the adapter tests: story files, headless GL, and a no-network / no-spaCy guard.

* ``SCALEZERO_JERICHO_DIR`` defaults to ``<repo>/../shared/data/jericho``; tests that need story files take
  the ``story_dir`` fixture, which skips them (with the reason) when the directory is missing.
* ``MUJOCO_GL`` is chosen (egl, else osmesa) before dm_control is imported, unless already set.
* Every adapter test runs with internet sockets and DNS blocked and with ``import spacy`` blocked. Any
  attempt is recorded and fails the test at teardown even if the code under test swallowed the exception.
"""

from __future__ import annotations

import importlib.abc
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from scalezero_adapters import STORY_DIR_ENV, select_gl_backend

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_STORY_DIR = (REPO_ROOT / ".." / "shared" / "data" / "jericho").resolve()
os.environ.setdefault(STORY_DIR_ENV, str(DEFAULT_STORY_DIR))
select_gl_backend()


class NetworkAccessError(RuntimeError):
    """Raised by the guard when code under test tries to reach the network or load spaCy."""


class _BlockSpacy(importlib.abc.MetaPathFinder):
    def __init__(self, attempts: list[str]) -> None:
        self.attempts = attempts

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> None:
        if fullname == "spacy" or fullname.startswith("spacy."):
            self.attempts.append(f"import {fullname}")
            raise NetworkAccessError(f"import of {fullname} blocked: adapters must work without spaCy")
        return None


@pytest.fixture(autouse=True)
def offline_guard(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Block internet sockets, DNS and spaCy for the duration of each test; fail on any attempt."""
    attempts: list[str] = []
    real_connect = socket.socket.connect

    def guarded_connect(self: socket.socket, address: Any) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            attempts.append(f"connect {address!r}")
            raise NetworkAccessError(f"network access blocked in tests: connect({address!r})")
        real_connect(self, address)

    def guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        attempts.append(f"getaddrinfo {host!r}")
        raise NetworkAccessError(f"network access blocked in tests: getaddrinfo({host!r})")

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)
    finder = _BlockSpacy(attempts)
    saved_spacy = {name: mod for name, mod in sys.modules.items() if name == "spacy" or name.startswith("spacy.")}
    for name in saved_spacy:
        monkeypatch.delitem(sys.modules, name)
    sys.meta_path.insert(0, finder)
    try:
        yield attempts
    finally:
        sys.meta_path.remove(finder)
    assert not attempts, f"code under test tried to reach the network or spaCy: {attempts}"


@pytest.fixture
def story_dir() -> Path:
    """The Jericho story-file directory; skips the test when it is missing."""
    directory = Path(os.environ[STORY_DIR_ENV])
    if not (directory / "detective.z5").is_file():
        pytest.skip(f"Jericho story files not found in {directory} (set {STORY_DIR_ENV})")
    return directory
