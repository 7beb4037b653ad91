"""docs/library.md stays true: every ```python block in it runs, each in a
fresh diyc root, and leaves nothing behind there."""

import contextlib
import io
import os
import re
from pathlib import Path

import pytest

from conftest import child_pids, container_records

DOC = Path(__file__).resolve().parent.parent / "docs" / "library.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", DOC.read_text(), re.S | re.M)


def test_the_page_has_examples():
    assert len(BLOCKS) >= 5
    assert any("code-judge" in h for h in re.findall(r"^## (.*)", DOC.read_text(), re.M))


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_example_runs(code, tmp_path, monkeypatch):
    root = tmp_path / "root"
    monkeypatch.setenv("DIYC_ROOT", str(root))
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(DOC), "exec"), {"__name__": "__docs__"})
    if root.exists():
        assert container_records(root) == []
        assert os.listdir(root / "names") == [] if (root / "names").exists() else True
    assert child_pids() == []
