"""engine/yamlsafe.py: plain data with positions; every bad input a located diagnostic, fast."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from engine.policy import yamlsafe
from engine.core.errors import PolicyError
from engine.policy.yamlsafe import MAX_ALIAS_NODES, MAX_BYTES, load_yaml, pointer_join


def problems(source, **kwargs):
    with pytest.raises(PolicyError) as caught:
        load_yaml(source, "p.yaml", **kwargs)
    return [(d.code, d.line, d.column, d.path, d.message) for d in caught.value.diagnostics]


def test_data_and_positions():
    text = "version: '2024-05-31'\nrules:\n  - id: a\n    when:\n      all:\n        - status: {eq: x}\n"
    data, positions = load_yaml(text, "p.yaml")
    assert data == {"version": "2024-05-31", "rules": [{"id": "a", "when": {"all": [{"status": {"eq": "x"}}]}}]}
    assert positions[""] == (1, 1)
    assert positions["/version"] == (1, 10)
    assert positions.key("/version") == (1, 1)
    assert positions["/rules/0"] == (3, 5)
    assert positions.key("/rules/0/when") == (4, 5)
    assert positions["/rules/0/when/all/0/status/eq"] == (6, 24)
    # a pointer that does not exist is located at its closest ancestor
    assert positions.nearest("/rules/0/when/all/0/status/ne") == (6, 19)
    assert positions.key("/rules/0/when/all/0/status") == (6, 11)


def test_dates_stay_strings_and_scalars_are_json_types():
    data, _ = load_yaml("d: 2024-05-31\nt: 2024-05-31T00:00:00+08:00\nn: 48\nb: true\nz: null\nf: 1.5\n")
    assert data == {"d": "2024-05-31", "t": "2024-05-31T00:00:00+08:00", "n": 48, "b": True, "z": None, "f": 1.5}


def test_path_and_bytes_sources(tmp_path: Path):
    path = tmp_path / "x.yaml"
    path.write_text("label: 未收到货\n", encoding="utf-8")
    assert load_yaml(path)[0] == {"label": "未收到货"}
    assert load_yaml("label: 未收到货\n".encode("utf-8"))[0] == {"label": "未收到货"}


def test_malformed_yaml_is_located_at_the_parser_mark():
    text = "version: '2024'\nrules:\n  - id: a\n    when: {x: 1\n  - id: b\n"
    assert problems(text) == [("yaml_syntax", 5, 7, "",
                               "expected ',' or '}', but got ':' (while parsing a flow mapping started at line 4)")]
    assert problems("rules:\n  - id: a\n     stage: gate\n") == [
        ("yaml_syntax", 3, 11, "", "mapping values are not allowed here")]


def test_duplicate_keys_are_errors_all_reported():
    text = "a: 1\nb:\n  c: 2\n  c: 3\na: 4\n"
    assert problems(text) == [
        ("duplicate_key", 4, 3, "/b/c", "duplicate key `c` (first defined at line 3)"),
        ("duplicate_key", 5, 1, "/a", "duplicate key `a` (first defined at line 1)"),
    ]


def test_arbitrary_tags_are_refused():
    assert problems("a: !!python/object/apply:os.system ['true']\n") == [
        ("unsupported_tag", 1, 4, "/a", "tag `tag:yaml.org,2002:python/object/apply:os.system` is not allowed")]
    assert problems("a: !custom x\n")[0][:4] == ("unsupported_tag", 1, 4, "/a")
    assert problems("a: !!binary aGk=\n")[0][:4] == ("unsupported_tag", 1, 4, "/a")


def test_merge_and_non_string_keys_are_refused():
    assert problems("base: &b {x: 1}\nitem:\n  <<: *b\n")[0][:4] == ("merge_key", 3, 3, "/item")
    assert problems("1: one\n") == [("non_string_key", 1, 1, "", "mapping key `1` is not a string")]


def test_anchors_and_aliases_within_bound_are_expanded():
    data, positions = load_yaml("a: &x [1, 2]\nb: *x\n")
    assert data == {"a": [1, 2], "b": [1, 2]}
    assert positions["/b"] == (2, 4)  # where the alias was written


def test_alias_bomb_stops_at_the_bound_quickly():
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):  # 10^9 nodes if expanded
        prev, name = chr(96 + i), chr(97 + i)
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
    started = time.perf_counter()
    found = problems("\n".join(lines) + "\n")
    assert time.perf_counter() - started < 2
    # d's 8th item, an alias to c (1,000 nodes each), crosses 10,000 produced nodes
    assert found == [("alias_limit", 4, 36, "/d/7/9/0/1", f"aliases expand to more than {MAX_ALIAS_NODES} nodes")]


def test_alias_cycle_and_deep_nesting():
    assert problems("a: &a [1, *a]\n") == [("alias_cycle", 1, 11, "/a/1", "alias refers to a node that contains it")]
    code, line, column, _, message = problems("[" * 100_000)[0]
    assert (code, line, column, message) == ("too_deep", 1, 1, "nesting is deeper than 64 levels")
    assert problems("a: " + "[" * 70 + "]" * 70 + "\n")[0][0] == "too_deep"


def test_50_megabyte_file_is_refused_before_reading(tmp_path: Path):
    big = tmp_path / "2024-05-31.yaml"
    with open(big, "wb") as handle:
        handle.write(b"a: 1\n")
        handle.truncate(50 * 1024 * 1024)  # sparse: 50 MB on stat, nothing to parse quickly
    started = time.perf_counter()
    found = problems(big)
    assert time.perf_counter() - started < 1
    assert found == [("file_too_large", 1, 1, "",
                      f"the file is {50 * 1024 * 1024:,} bytes; the limit is {MAX_BYTES:,} bytes")]


def test_size_limit_applies_to_text_too():
    assert problems("a: " + "x" * 200 + "\n", max_bytes=100)[0][:3] == ("file_too_large", 1, 1)


def test_bad_bytes_and_characters_are_located():
    assert problems(b"a: 1\nb: \xff\n") == [("encoding", 2, 4, "", "the file is not valid UTF-8 (byte 0xff)")]
    assert problems("a: 1\nb: \x07\n") == [("yaml_syntax", 2, 4, "", "special characters are not allowed (U+0007)")]


def test_more_than_one_document_is_an_error():
    code, line, column, _, message = problems("a: 1\n---\nb: 2\n")[0]
    assert (code, line, column) == ("yaml_syntax", 2, 1)
    assert "single document" in message


def test_empty_document_is_none():
    assert load_yaml("# only a comment\n")[0] is None


def test_unreadable_path(tmp_path: Path):
    assert problems(tmp_path / "missing.yaml")[0][:3] == ("unreadable", 1, 1)


def test_pointer_escaping():
    assert pointer_join("/a", "x/y~z") == "/a/x~1y~0z"
    data, positions = load_yaml("'x/y': 1\n")
    assert positions["/x~1y"] == (1, 8)


def test_common_syntax_slips_carry_a_hint():
    with pytest.raises(PolicyError) as caught:
        load_yaml("a:\n\tb: 1\n", "p.yaml")
    d = caught.value.diagnostics[0]
    assert (d.line, d.column, d.hint) == (2, 1, "indent with spaces; YAML does not allow tabs")


@pytest.mark.skipif(yamlsafe._FastLoader is None, reason="PyYAML built without libyaml")
def test_libyaml_fast_path_gives_the_same_data_and_positions():
    fixtures = Path(__file__).parent / "fixtures" / "policies" / "valid"
    for path in sorted(fixtures.glob("*.yaml")):
        text = path.read_text("utf-8")
        fast = yamlsafe._parse(yamlsafe._FastLoader, text, path.name, MAX_ALIAS_NODES, 64)
        pure = yamlsafe._parse(yamlsafe._Loader, text, path.name, MAX_ALIAS_NODES, 64)
        assert fast[0] == pure[0]
        assert dict(fast[1]) == dict(pure[1]) and fast[1].key_marks == pure[1].key_marks
