"""Provenance: the version and commit of the code that runs, and content digests of code."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from conftest import REPO
from qmdipole import provenance


@pytest.fixture(autouse=True)
def fresh_revision():
    provenance.revision.cache_clear()
    yield
    provenance.revision.cache_clear()


def test_revision_of_this_checkout_is_its_head():
    if provenance.PACKAGE_DIR != REPO / "src" / "qmdipole":
        pytest.skip("the package under test is not this checkout's (a regular install)")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True,
                          text=True).stdout.strip()
    found = provenance.revision()
    assert found["git_commit"] == head
    assert found["git_dirty"] in ("true", "false")


def test_a_foreign_enclosing_repository_is_never_reported(monkeypatch, tmp_path):
    # an installed package inside some other git repository: its HEAD is not ours
    def foreign_git(*args):
        return {("rev-parse", "--show-toplevel"): str(tmp_path),
                ("rev-parse", "HEAD"): "f" * 40}.get(args, "")

    monkeypatch.setattr(provenance, "_git", foreign_git)
    found = provenance.revision()
    assert found["git_commit"] != "f" * 40
    assert found["version"]


def test_code_digest_depends_on_content_only(tmp_path, monkeypatch):
    digest = provenance.code_digest("quadrupolar")
    copy = tmp_path / "qmdipole"
    shutil.copytree(provenance.PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(provenance, "PACKAGE_DIR", copy)
    assert provenance.code_digest("quadrupolar") == digest  # moved: the same
    (copy / "tetrahedron.py").write_text((copy / "tetrahedron.py").read_text() + "\n# edit\n")
    edited = provenance.code_digest("quadrupolar")
    assert edited != digest  # an imported module edited
    (copy / "io.py").write_text((copy / "io.py").read_text() + "\n# edit\n")
    assert provenance.code_digest("quadrupolar") == edited  # I/O does not count
    with pytest.raises(provenance.CodeError, match="no_such_module"):
        provenance.code_digest("no_such_module")
