"""Every spec file kind (jobs and queues, clusters, catalogs, the server config) is read by one
YAML loader with the same limits, reads quantities with one unit grammar, and reports problems
in one shape: `path: message (allowed: ...)`."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from suan.catalog import load_catalog
from suan.cluster.spec import load_cluster
from suan.control.settings import read_server_file
from suan.errors import FieldProblem, SpecError
from suan.jobs.spec import load_documents, load_documents_text
from suan.specfile import MAX_SPEC_BYTES, MAX_YAML_DEPTH

CLUSTER_HEAD = "apiVersion: suan.ai/v1\nkind: Cluster\nmetadata: {name: lab}\n"
JOB_HEAD = "apiVersion: suan.ai/v1\nkind: Job\nmetadata: {name: demo}\n"


@pytest.fixture(autouse=True)
def no_operator_catalog(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SUAN_CATALOG", raising=False)


def problems(load: Callable[[Path], Any], path: Path, text: str) -> list[FieldProblem]:
    """The problems `load` reports for a file holding `text`."""
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError) as caught:
        load(path)
    assert caught.value.source == str(path)
    return caught.value.problems


def cluster_text(node: str) -> str:
    """A cluster file of one node whose fields are the YAML flow mapping body `node`."""
    return CLUSTER_HEAD + f"spec:\n  nodes:\n    - {{name: a, {node}}}\n"


def job_text(group: str) -> str:
    """A job file of one replica group whose extra fields are the YAML flow body `group`."""
    return (
        JOB_HEAD + "spec:\n  command: [python, train.py]\n"
        f"  replicaGroups:\n    - {{name: worker, {group}}}\n"
    )


def load_jobs(path: Path) -> Any:
    return load_documents(path)


def load_catalog_file(path: Path) -> Any:
    return load_catalog([path], builtin=False)


LOADERS: dict[str, Callable[[Path], Any]] = {
    "job": load_jobs,
    "cluster": load_cluster,
    "catalog": load_catalog_file,
    "settings": read_server_file,
}


# --- duplicate keys -------------------------------------------------------------------------


def test_a_cluster_file_refuses_a_key_written_twice_naming_the_key_and_line(tmp_path):
    text = CLUSTER_HEAD + "spec:\n  nodePools:\n    - name: h100\n      count: 2\n      count: 4\n"
    [problem] = problems(load_cluster, tmp_path / "c.yaml", text)
    assert str(problem) == (
        "spec.nodePools.0.count: duplicate key 'count' (line 8) "
        "(allowed: each key once in a mapping)"
    )


@pytest.mark.parametrize(
    ("kind", "text", "path", "line"),
    [
        ("job", JOB_HEAD + "kind: Queue\n", "documents[0].kind", 4),
        ("job", "---\n" + JOB_HEAD + "---\n" + JOB_HEAD + "spec: {a: 1, a: 2}\n",
         "documents[1].spec.a", 9),
        ("job", "kind: List\nitems:\n  - " + JOB_HEAD.replace("\n", "\n    ") + "metadata: {}\n",
         "documents[0].metadata", 6),
        ("cluster", CLUSTER_HEAD + "metadata: {name: b}\n", "metadata", 4),
        ("catalog", "accelerators:\n  - {name: z9, name: z10}\n", "accelerators.0.name", 2),
        ("settings", "engine: local\nlimits:\n  pids: 1\n  pids: 2\n", "limits.pids", 4),
    ],
)
def test_every_file_kind_names_a_duplicate_key_the_same_way(tmp_path, kind, text, path, line):
    found = problems(LOADERS[kind], tmp_path / "f.yaml", text)
    key = path.rsplit(".", 1)[-1]
    assert [str(p) for p in found] == [
        f"{path}: duplicate key {key!r} (line {line}) (allowed: each key once in a mapping)"
    ]


# --- units ----------------------------------------------------------------------------------


def node_of(path: Path, text: str) -> tuple[int, int]:
    path.write_text(text, encoding="utf-8")
    [node] = load_cluster(path).nodes
    return node.memory_mib, node.cpu_milli


def group_of(text: str) -> tuple[int, int]:
    [job], _ = load_documents_text(text)
    [group] = job.groups
    return group.memory_mib, group.cpu_milli


def test_a_fraction_of_a_mib_rounds_up_for_nodes_as_for_jobs(tmp_path):
    assert node_of(tmp_path / "c.yaml", cluster_text("memory: 0.4Mi")) == (1, 0)
    assert group_of(job_text("memory: 0.4Mi")) == (1, 0)
    assert node_of(tmp_path / "c.yaml", cluster_text("memory: 64G")) == (61036, 0)
    assert group_of(job_text("memory: 64G")) == (61036, 0)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ("memory: 1e3", (1000, 0)),
        ("memory: 1.5e3Mi", (1500, 0)),
        ("memory: '2e-1Gi'", (205, 0)),
        ("cpu: 1e3m", (0, 1000)),
        ("cpu: '1.5e1'", (0, 15000)),
        ("memory: 1000kB", (1, 0)),
        ("cpu: 250 m", (0, 250)),
    ],
)
def test_number_forms_mean_the_same_in_a_node_and_a_job(tmp_path, fields, expected):
    assert node_of(tmp_path / "c.yaml", cluster_text(fields)) == expected
    assert group_of(job_text(fields)) == expected


def test_a_node_with_more_cores_than_a_job_may_ask_for_is_refused(tmp_path):
    [problem] = problems(load_cluster, tmp_path / "c.yaml", cluster_text("cpu: 2000000"))
    assert problem.path == "spec.nodes.0.cpu" and "1000000 cores" in problem.message


# --- limits ---------------------------------------------------------------------------------

DEEP = "a: " + "[" * (MAX_YAML_DEPTH + 1) + "]" * (MAX_YAML_DEPTH + 1) + "\n"
LAUGHS = "\n".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [
        f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]"
        for previous, name in zip("abcdefgh", "bcdefghi", strict=True)
    ]
)


@pytest.mark.parametrize("kind", sorted(LOADERS))
def test_every_file_kind_refuses_nesting_deeper_than_the_limit(tmp_path, kind):
    [problem] = problems(LOADERS[kind], tmp_path / "f.yaml", DEEP)
    assert problem.path == "line 1"
    assert f"more than {MAX_YAML_DEPTH} levels" in problem.message


@pytest.mark.parametrize("kind", sorted(LOADERS))
def test_every_file_kind_refuses_an_alias_bomb(tmp_path, kind):
    [problem] = problems(LOADERS[kind], tmp_path / "f.yaml", LAUGHS)
    assert "aliases are expanded" in problem.message


@pytest.mark.parametrize("kind", sorted(LOADERS))
def test_every_file_kind_refuses_a_file_over_the_size_limit(tmp_path, kind):
    [problem] = problems(LOADERS[kind], tmp_path / "f.yaml", "#" * (MAX_SPEC_BYTES + 1))
    assert problem.path == "" and f"{MAX_SPEC_BYTES:,} bytes" in problem.allowed


@pytest.mark.parametrize("kind", sorted(LOADERS))
def test_every_file_kind_refuses_text_that_is_not_utf8(tmp_path, kind):
    path = tmp_path / "f.yaml"
    path.write_bytes("engine: caf\xe9\n".encode("latin-1"))
    with pytest.raises(SpecError) as caught:
        LOADERS[kind](path)
    [problem] = caught.value.problems
    assert "not UTF-8" in problem.message and problem.allowed == "a UTF-8 text file"


# --- problems in one shape ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "text", "path", "hint"),
    [
        ("job", job_text("memry: 1Gi"), "documents[0].spec.replicaGroups.0.memry", "memory"),
        ("cluster", cluster_text("memry: 1Gi"), "spec.nodes.0.memry", "memory"),
        ("catalog", "accelerators:\n  - {name: z9, memry_gib: 80}\n", "accelerators.0.memry_gib",
         "memory_gib"),
        ("settings", "limits: {memry: 1Gi}\n", "limits.memry", "memory"),
    ],
)
def test_every_file_kind_names_an_unknown_key_and_the_allowed_keys(
    tmp_path, kind, text, path, hint
):
    found = {p.path: p for p in problems(LOADERS[kind], tmp_path / "f.yaml", text)}
    problem = found[path]
    key = path.rsplit(".", 1)[-1]
    assert problem.message == f"unknown field {key!r}; did you mean {hint!r}?"
    assert hint in problem.allowed.split(", ")


@pytest.mark.parametrize(
    ("kind", "text", "path"),
    [
        ("job", JOB_HEAD + "spec: [1]\n", "documents[0].spec"),
        ("cluster", CLUSTER_HEAD + "spec: [1]\n", "spec"),
        ("catalog", "accelerators: [[1]]\n", "accelerators.0"),
        ("settings", "limits: [1]\n", "limits"),
    ],
)
def test_every_file_kind_says_a_mapping_was_expected(tmp_path, kind, text, path):
    found = {p.path: p for p in problems(LOADERS[kind], tmp_path / "f.yaml", text)}
    assert found[path].message == "expected a mapping, got a list"


# --- one grammar, every file kind -----------------------------------------------------------

_NUMBER_TEXT = st.builds(
    lambda whole, frac, exp: whole + frac + exp,
    st.sampled_from(["0", "1", "2", "12", "100", "1024", "", "007"]),
    st.sampled_from(["", ".", ".5", ".25", ".4", ".001"]),
    st.sampled_from(["", "e3", "E-2", "e+1", "e0", "e9"]),
)
MEMORY_TEXT = st.builds(
    lambda number, space, unit, suffix: number + space + unit + (suffix if unit else ""),
    _NUMBER_TEXT,
    st.sampled_from(["", " "]),
    st.sampled_from(["", "Ki", "Mi", "Gi", "Ti", "Pi", "k", "K", "M", "G", "T", "P", "m", "x"]),
    st.sampled_from(["", "B"]),
)
CPU_TEXT = st.builds(
    lambda number, space, unit: number + space + unit,
    _NUMBER_TEXT,
    st.sampled_from(["", " "]),
    st.sampled_from(["", "m", "k"]),
)


def _outcome(load: Callable[[], Any]) -> Any:
    """What a file kind made of a value: the value, or "refused"."""
    try:
        return load()
    except SpecError:
        return "refused"


def _write(directory: str, name: str, text: str) -> Path:
    path = Path(directory) / name
    path.write_text(text, encoding="utf-8")
    return path


def _quoted(text: str) -> str:
    """`text` as a YAML string (a JSON string is one), so the file passes it on unchanged."""
    return json.dumps(text)


@settings(
    derandomize=True,
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(memory=MEMORY_TEXT, cpu=CPU_TEXT)
def test_the_same_unit_text_means_the_same_in_every_file_kind(memory, cpu):
    with tempfile.TemporaryDirectory() as directory:
        memory_outcomes = {
            "job": _outcome(lambda: group_of(job_text(f"memory: {_quoted(memory)}"))[0]),
            "cluster": _outcome(lambda: node_of(
                Path(directory) / "c.yaml", cluster_text(f"memory: {_quoted(memory)}"))[0]),
            "settings": _outcome(lambda: read_server_file(_write(
                directory, "s.yaml", f"limits: {{memory: {_quoted(memory)}}}\n"
            )).limits.memory),
        }
        cpu_outcomes = {
            "job": _outcome(lambda: group_of(job_text(f"cpu: {_quoted(cpu)}"))[1]),
            "cluster": _outcome(lambda: node_of(
                Path(directory) / "c.yaml", cluster_text(f"cpu: {_quoted(cpu)}"))[1]),
        }
        bare = yaml.safe_load(f"v: {memory}")["v"]
        if isinstance(bare, int | float) and not isinstance(bare, bool):
            memory_outcomes["job, unquoted"] = _outcome(
                lambda: group_of(job_text(f"memory: {memory}"))[0])
            memory_outcomes["cluster, unquoted"] = _outcome(lambda: node_of(
                Path(directory) / "c.yaml", cluster_text(f"memory: {memory}"))[0])
    assert len(set(memory_outcomes.values())) == 1, (memory, memory_outcomes)
    assert len(set(cpu_outcomes.values())) == 1, (cpu, cpu_outcomes)


# --- one loader, every file kind ------------------------------------------------------------

_TREES = st.recursive(
    st.integers(0, 9),
    lambda children: st.dictionaries(st.sampled_from("abcde"), children, min_size=1, max_size=3),
    max_leaves=12,
).filter(lambda tree: isinstance(tree, dict))


def _mapping_paths(tree: dict[str, Any], path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The path of every mapping in `tree`, itself first."""
    found = [path]
    for key, value in tree.items():
        if isinstance(value, dict):
            found += _mapping_paths(value, (*path, key))
    return found


def _emit(
    tree: dict[str, Any], repeat: tuple[str, ...], path: tuple[str, ...] = (), lines=None
) -> tuple[list[str], int]:
    """Block YAML lines for `tree`, with the last key of the mapping at `repeat[:-1]` written
    once more at its end; and the line (from 1) of that repeat."""
    lines = [] if lines is None else lines
    indent = "  " * len(path)
    repeat_line = 0
    for key, value in tree.items():
        if isinstance(value, dict):
            lines.append(f"{indent}{key}:")
            _, found = _emit(value, repeat, (*path, key), lines)
            repeat_line = repeat_line or found
        else:
            lines.append(f"{indent}{key}: {value}")
    if path == repeat[:-1]:
        lines.append(f"{indent}{repeat[-1]}: 0")
        repeat_line = len(lines)
    return lines, repeat_line


@settings(derandomize=True, max_examples=150, deadline=None)
@given(tree=_TREES, data=st.data())
def test_a_repeated_key_is_named_at_the_same_path_and_line_in_every_file_kind(tree, data):
    where = data.draw(st.sampled_from(_mapping_paths(tree)))
    mapping = tree
    for key in where:
        mapping = mapping[key]
    repeat = (*where, list(mapping)[-1])
    lines, line = _emit(tree, repeat)
    text = "\n".join(lines) + "\n"
    dotted = ".".join(repeat)
    expected = f"duplicate key {repeat[-1]!r} (line {line}) (allowed: each key once in a mapping)"
    with tempfile.TemporaryDirectory() as directory:
        path = _write(directory, "f.yaml", text)
        for kind, load in LOADERS.items():
            with pytest.raises(SpecError) as caught:
                load(path)
            prefix = "documents[0]." if kind == "job" else ""
            assert [str(p) for p in caught.value.problems] == [f"{prefix}{dotted}: {expected}"]
