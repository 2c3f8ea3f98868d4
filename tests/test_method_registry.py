"""The registry: every method file registers itself, the README's table is the generated one, citations carry ids."""

from __future__ import annotations

import re
from pathlib import Path

import pkgutil

import decone.methods as methods_pkg
from decone.methods import METHODS, method_table

ROOT = Path(__file__).resolve().parent.parent


def test_every_file_in_methods_registers_a_method():
    files = {m.name for m in pkgutil.iter_modules(methods_pkg.__path__)}
    assert {name.replace("-", "_") for name in METHODS} == files


def test_every_method_file_has_a_test_file_of_its_own():
    """Adding a method is one file in methods/, one test file and one README row: ``test_<module>.py`` (or
    ``test_<module>_<part>.py``) somewhere under tests/."""
    tests = {p.stem for p in (ROOT / "tests").rglob("test_*.py")}
    for module in (m.name for m in pkgutil.iter_modules(methods_pkg.__path__)):
        assert any(t == f"test_{module}" or t.startswith(f"test_{module}_") for t in tests), f"no tests/**/test_{module}.py"


def test_every_citation_has_an_arxiv_or_openreview_id():
    for m in METHODS.values():
        assert re.search(r"(arXiv:\d{4}\.\d{4,5}|openreview:\S+)$", m.citation), m.name


def test_the_readme_method_table_is_the_generated_one():
    readme = (ROOT / "README.md").read_text()
    table = readme.split("<!-- methods:begin -->\n", 1)[1].split("\n<!-- methods:end -->", 1)[0]
    assert table == method_table()


def test_train_help_lists_the_registry(tmp_path):
    from typer.testing import CliRunner

    from decone.cli import app

    out = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "300"}).output
    for name in METHODS:
        assert name in out
    from decone.cli import _method_names

    assert _method_names().split(" | ") == list(METHODS)  # the help's list (read without torch) in the registry's order


def test_backbone_names_what_a_method_trains_and_results_compares_every_encoder_sentence_method():
    import pytest

    from decone.methods import Method
    from tests.test_benchmark_results import _module

    assert {m.name for m in METHODS.values() if m.backbone == "decoder"} == {"mntp", "llm2vec-simcse", "llm2vec"}
    with pytest.raises(ValueError, match="backbone must be one of"):
        Method(name="x", summary="", citation="", data="sentences", stages=("simcse",), backbone="seq2seq")
    h2h = _module("results").HEAD_TO_HEAD
    assert h2h[0] == "simcse" and len(set(h2h)) == len(h2h)
    assert set(h2h) == {m.name for m in METHODS.values() if m.data == "sentences" and m.backbone == "encoder"}
