"""The policy schema's fast path (engine/policy/checks/schema.py): a compiled fastjsonschema
validator first, jsonschema's full error listing only when it refuses. It must never pass a
document jsonschema refuses, and a bad file's diagnostics must be the very same both ways."""
from __future__ import annotations

import copy
import random
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

import pytest

from engine.core.errors import PolicyError
from engine.policy.bundle import PolicyDocument, load_files, read_documents
from engine.policy.checks import check_document
from engine.policy.checks.schema import fast_accepts, schema_diagnostics
from engine.policy.memo import DocumentMemo

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = sorted((ROOT / "rules").glob("*.yaml"))
FIXTURES = ROOT / "tests" / "fixtures" / "policies"


def _document(path: Path) -> PolicyDocument:
    read = read_documents([path])
    assert not read.problems
    return read.documents[0]


@pytest.mark.parametrize("path", BUNDLED + sorted((FIXTURES / "valid").glob("*.yaml")), ids=lambda p: p.name)
def test_every_valid_policy_takes_the_fast_path(path):
    document = _document(path)
    assert fast_accepts(document.data)
    assert list(schema_diagnostics(document)) == []


def _nodes(data: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _nodes(value, (*path, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from _nodes(value, (*path, i))


WRONG_VALUES: tuple[Any, ...] = (None, 7, -1, 2.5, True, "", "zz_unknown", [], [1], {}, {"x": 1},
                                  "2024-01-01T00:00:00")


def _variants(data: Any, count: int, seed: int) -> Iterator[tuple[str, Any]]:
    """Broken (or not) copies of `data`: a value swapped for another type or word, a key deleted,
    an unknown key added, a list emptied, an item duplicated."""
    rng = random.Random(seed)
    nodes = [p for p in _nodes(data) if p]
    for _ in range(count):
        path = rng.choice(nodes)
        variant = copy.deepcopy(data)
        parent = variant
        for part in path[:-1]:
            parent = parent[part]
        last = path[-1]
        how = rng.choice(("swap", "swap", "delete", "unknown_key", "empty", "duplicate"))
        if how == "swap":
            parent[last] = rng.choice(WRONG_VALUES)
        elif how == "delete":
            del parent[last]
        elif how == "unknown_key" and isinstance(parent[last], dict):
            parent[last]["zz_unknown_key"] = 1
        elif how == "empty" and isinstance(parent[last], (list, dict)):
            parent[last] = type(parent[last])()
        elif how == "duplicate" and isinstance(parent[last], list) and parent[last]:
            parent[last].append(copy.deepcopy(parent[last][0]))
        else:
            parent[last] = rng.choice(WRONG_VALUES)
        yield f"{how} /{'/'.join(map(str, path))}", variant


@pytest.mark.parametrize("path", [BUNDLED[0], BUNDLED[-1]], ids=lambda p: p.name)
def test_the_fast_path_never_passes_what_the_full_validator_refuses(path):
    document = _document(path)
    refused = 0
    for what, data in _variants(document.data, count=150, seed=11):
        variant = replace(document, data=data)
        full = list(schema_diagnostics(variant))
        fast = list(schema_diagnostics(variant, fast=True))
        assert fast == full, what          # same diagnostics: file, line, column, path, code, text
        if fast_accepts(data):
            assert full == [], what        # never more lenient
        else:
            refused += 1
    assert refused >= 100   # the variants do break the schema (the comparison means something)


BROKEN_EDITS = [
    ("a wrong type", [("title:", "title: [1, 2]\nx_title:")]),
    ("an unknown key and an enum value", [("version:", "versoin: x\nversion:"), ("stage: gate", "stage: gates")]),
    ("a missing section and a bad time", [("effective_from: \"2024-03-22T00:00:00+08:00\"",
                                           "effective_from: \"2024-03-22\"")]),
]


def test_several_broken_documents_give_the_same_diagnostics_both_ways(tmp_path):
    valid = FIXTURES / "valid" / "2024-03-22.yaml"
    files = [FIXTURES / "malformed" / "2024-05-31.yaml", FIXTURES / "broken" / "2024-03-22.yaml"]
    for i, (_, edits) in enumerate(BROKEN_EDITS):
        text = valid.read_text("utf-8")
        for old, new in edits:
            text = text.replace(old, new, 1)
        folder = tmp_path / str(i)
        folder.mkdir()
        (folder / "2024-03-22.yaml").write_text(text, "utf-8")
        files.append(folder / "2024-03-22.yaml")
    compared = 0
    for path in files:
        document = _document(path) if not read_documents([path]).problems else None
        if document is None:
            continue
        full = check_document(document)
        fast = check_document(document, fast_schema=True)
        assert fast == full, path
        assert [(d.file, d.line, d.column, d.path, d.code) for d in fast] == \
               [(d.file, d.line, d.column, d.path, d.code) for d in full]
        # and the way a reload loads it (the memo asks for the fast path)
        with pytest.raises(PolicyError) as plain:
            load_files([path])
        assert len(list(path.parent.glob("*.yaml"))) == 1
        memo = DocumentMemo()
        with pytest.raises(PolicyError) as remembered:
            memo.load_directory(path.parent)
        assert remembered.value.diagnostics == plain.value.diagnostics
        assert memo.stats.checked == 1
        compared += 1 if full else 0
    assert compared >= 4
