"""Job and Queue spec files: the examples load into the expected scheduler objects, and every
kind of mistake is reported with its field path, what was wrong and what is allowed."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from suan.catalog import Catalog, default_catalog
from suan.errors import FieldProblem, SpecError
from suan.jobs.model import Job, ReplicaGroup, TopologyConstraint
from suan.jobs.queue import QueueSpec
from suan.jobs.spec import (
    PRIORITY_CLASSES,
    flatten_documents,
    job_to_document,
    load_documents,
    load_documents_text,
    parse_documents,
    parse_job,
    parse_job_document,
    parse_queue,
    queue_to_document,
    read_stream,
)
from suan.jobs.units import (
    UnitError,
    format_cpu,
    format_duration,
    format_memory,
    parse_cpu_milli,
    parse_duration,
    parse_memory_mib,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "jobs"
H100, H800, B910, C910, P800 = (
    "H100-SXM-80GB",
    "H800",
    "Ascend-910B",
    "Ascend-910C",
    "Kunlunxin-P800",
)


def job_doc(spec: dict[str, Any], name: str = "demo") -> dict[str, Any]:
    return {"apiVersion": "suan.ai/v1", "kind": "Job", "metadata": {"name": name}, "spec": spec}


def queue_doc(spec: dict[str, Any], name: str = "team") -> dict[str, Any]:
    return {"apiVersion": "suan.ai/v1", "kind": "Queue", "metadata": {"name": name}, "spec": spec}


def one_group(**group: Any) -> dict[str, Any]:
    return {"replicaGroups": [{"name": "worker", **group}]}


def problems_of(document: Any, parse=parse_job) -> dict[str, FieldProblem]:
    """The problems of one invalid document, by path."""
    with pytest.raises(SpecError) as caught:
        parse(document)
    return {problem.path: problem for problem in caught.value.problems}


# --- the examples ---------------------------------------------------------------------------


def test_llama_pretrain_is_64_h100_as_8_replicas_of_8_within_one_block():
    (job,), queues = load_documents(EXAMPLES / "llama-pretrain.yaml", submit_time=5.0)
    assert queues == []
    assert job.name == "llama-pretrain" and job.queue == "team-a" and job.user == "alice"
    assert job.groups == (
        ReplicaGroup(
            name="trainer",
            replicas=8,
            accelerators=8,
            accelerator_types=(H100,),
            cpu_milli=96_000,
            memory_mib=1600 * 1024,
        ),
    )
    assert job.devices == 64
    assert job.priority == PRIORITY_CLASSES["high"] == 100
    assert job.topology == TopologyConstraint(replica_in_domain=True, within="block")
    assert job.runtime_estimate_s == 72 * 3600 and job.checkpoint_interval_s == 1800
    assert job.submit_time == 5.0
    assert job.command[0] == "torchrun"
    assert dict(job.env) == {"NCCL_DEBUG": "WARN", "OMP_NUM_THREADS": "8"}
    assert (job.restart_policy, job.max_restarts) == ("on-failure", 10)


def test_llama_pretrain_keeps_model_labels_and_checkpoint_dir_on_the_document():
    document = yaml.safe_load((EXAMPLES / "llama-pretrain.yaml").read_text())
    parsed = parse_job_document(document)
    assert parsed.spec.model == "meta-llama/Llama-3.1-70B"
    assert parsed.metadata.labels == {"project": "llama", "stage": "pretrain"}
    assert parsed.spec.checkpoint is not None
    assert parsed.spec.checkpoint.dir == "/checkpoints/llama-pretrain"


def test_finetune_910b_resolves_the_alias_to_the_catalog_name():
    (job,), _ = load_documents(EXAMPLES / "finetune-910b.yaml")
    (group,) = job.groups
    assert (group.replicas, group.accelerators, group.accelerator_types) == (2, 8, (B910,))
    assert job.checkpoint_interval_s == 1200 and job.runtime_estimate_s == 6 * 3600
    assert job.topology == TopologyConstraint(replica_in_domain=True, within="rack")
    assert dict(job.env) == {"HCCL_CONNECT_TIMEOUT": "1200"}


def test_hetero_pref_keeps_the_preference_order_and_the_elastic_floor():
    (job,), _ = load_documents(EXAMPLES / "hetero-pref.yaml")
    (group,) = job.groups
    assert group.accelerator_types == (H100, H800, B910)
    assert (group.replicas, group.min_replicas, group.floor_replicas) == (4, 2, 2)
    assert job.accepts(H800) and not job.accepts("A100-80GB")
    assert job.runtime_estimate_s == 5400 and job.priority == PRIORITY_CLASSES["low"]
    assert (job.restart_policy, job.max_restarts) == ("never", 0)
    assert job.topology.placement == "spread" and job.topology.within is None


def test_notebook_share_is_half_a_gpu_written_in_the_shorthand():
    (job,), _ = load_documents(EXAMPLES / "notebook-share.yaml")
    assert job.groups == (
        ReplicaGroup(
            name="worker",
            replicas=1,
            accelerators=1,
            accelerator_milli=500,
            accelerator_types=("A100-80GB",),
            cpu_milli=4000,
            memory_mib=32 * 1024,
        ),
    )
    assert job.devices == 0.5 and job.preemptible is False and job.restart_policy == "always"


def test_queues_example_is_a_tree_keyed_by_canonical_names():
    jobs, queues = load_documents(EXAMPLES / "queues.yaml")
    assert jobs == []
    assert queues == [
        QueueSpec(
            name="org", guaranteed={H100: 128, B910: 64, "accelerators": 192}, admins=("platform",)
        ),
        QueueSpec(
            name="team-a",
            parent="org",
            guaranteed={H100: 96, "accelerators": 96},
            borrow_limit={H100: 32},
            lend_limit={H100: 48},
            weight=2.0,
            admins=("alice",),
        ),
        QueueSpec(
            name="team-b",
            parent="org",
            guaranteed={H100: 32, B910: 64, "accelerators": 96},
            borrow_limit={"accelerators": 64},
            lend_limit={B910: 32},
            admins=("bob",),
        ),
    ]


def test_mixed_file_holds_queues_and_jobs_in_file_order():
    jobs, queues = load_documents(EXAMPLES / "mixed.yaml")
    assert [q.name for q in queues] == ["research", "team-a", "team-b"]
    assert [j.name for j in jobs] == [
        "pretrain-70b",
        "pretrain-8b",
        "sft-910b",
        "rl-hetero",
        "eval-small",
        "notebook-dave",
        "ranker-retrain",
    ]
    by_name = {job.name: job for job in jobs}
    assert {job.queue for job in jobs} <= {q.name for q in queues}
    assert by_name["pretrain-70b"].devices == 128
    rollout = by_name["rl-hetero"].groups[1]
    assert rollout.accelerator_types == (H100, B910) and rollout.min_replicas == 2
    assert by_name["eval-small"].groups[0].accelerator_types == ()
    assert by_name["ranker-retrain"].priority == PRIORITY_CLASSES["critical"]


def test_every_example_job_and_queue_round_trips_through_its_document():
    for path in sorted(EXAMPLES.glob("*.yaml")):
        if path.name == "bad-job.yaml":
            continue
        jobs, queues = load_documents(path)
        for job in jobs:
            assert parse_job(job_to_document(job)) == job, path.name
        for queue in queues:
            assert parse_queue(queue_to_document(queue)) == queue, path.name


# --- the three file layouts -----------------------------------------------------------------


def test_a_plain_yaml_list_and_a_list_kind_read_like_a_stream():
    job = job_doc(one_group(accelerators={"count": 2, "type": "h100"}), name="a")
    queue = queue_doc({"guaranteed": {"accelerators": 8}}, name="q")
    as_list = yaml.safe_dump([job, queue])
    as_kind_list = yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": [job, queue]})
    as_stream = yaml.safe_dump_all([job, None, queue])
    results = [load_documents_text(text) for text in (as_list, as_kind_list, as_stream)]
    assert results[0] == results[1] == results[2]
    (parsed_job,), (parsed_queue,) = results[0]
    assert parsed_job.groups[0].accelerator_types == (H100,)
    assert parsed_queue.guaranteed == {"accelerators": 8}


# --- errors ---------------------------------------------------------------------------------


def test_bad_job_example_reports_every_problem_of_the_file_at_once():
    with pytest.raises(SpecError) as caught:
        load_documents(EXAMPLES / "bad-job.yaml")
    error = caught.value
    assert error.source.endswith("bad-job.yaml")
    found = {problem.path: problem for problem in error.problems}
    expected = {
        "documents[0].metadata.name": "not a valid name: it has uppercase letters; it contains '_'",
        "documents[0].spec.priorty": "unknown field 'priorty'; did you mean 'priority'?",
        "documents[0].spec.replicaGroups.0.accelerators.count": "3 Ascend-910C devices",
        "documents[0].spec.replicaGroups.1.accelerators.share": "needs count 1, got count 2",
        "documents[0].spec.replicaGroups.2.accelerators.type.1": "unknown accelerator type",
        "documents[0].spec.runtimeEstimate": "'2 hours' is not a duration",
        "documents[0].spec.topology.within": "'building' is not a topology scope",
        "documents[1].spec.accelerators.count": "3 Kunlunxin-P800 devices",
        "documents[2].spec.accelerators.count": "more than one node has (8)",
        "documents[2].metadata.name": "job name 'p800-job' is already used by documents[1]",
    }
    assert set(found) == set(expected)
    for path, fragment in expected.items():
        assert fragment in found[path].message, path
    assert str(error).startswith(f"{error.source}: 10 problem(s)\n  - documents[0]")


def test_unknown_key_is_named_with_the_keys_that_are_allowed():
    found = problems_of(job_doc({**one_group(), "gpus": 8}))
    problem = found["spec.gpus"]
    assert problem.message == "unknown field 'gpus'"
    assert "replicaGroups" in problem.allowed and "priority" in problem.allowed


def test_unknown_key_in_a_nested_mapping_lists_that_mapping_keys():
    found = problems_of(job_doc(one_group(accelerators={"count": 1, "kind": "H100"})))
    problem = found["spec.replicaGroups.0.accelerators.kind"]
    assert problem.message == "unknown field 'kind'"
    assert problem.allowed == "count, share, type"


def test_snake_case_keys_are_unknown_with_a_hint_to_the_camel_case_key():
    found = problems_of(job_doc({"replica_groups": [{"name": "w"}]}))
    assert "did you mean 'replicaGroups'?" in found["spec.replica_groups"].message


def test_ascend_910c_refuses_three_devices_per_replica():
    found = problems_of(job_doc(one_group(accelerators={"count": 3, "type": "910C"})))
    problem = found["spec.replicaGroups.0.accelerators.count"]
    assert problem.message == "3 Ascend-910C devices per replica is not an allowed allocation"
    assert problem.allowed == "1 or a multiple of 2 up to 16"


def test_kunlunxin_p800_refuses_three_devices_per_replica():
    found = problems_of(job_doc(one_group(accelerators={"count": 3, "type": "P800"})))
    problem = found["spec.replicaGroups.0.accelerators.count"]
    assert problem.message == "3 Kunlunxin-P800 devices per replica is not an allowed allocation"
    assert problem.allowed.startswith("1, 2, 4, 8")


def test_a_replica_larger_than_a_node_is_refused_and_says_why():
    found = problems_of(job_doc(one_group(accelerators={"count": 16, "type": "H100"})))
    problem = found["spec.replicaGroups.0.accelerators.count"]
    assert "more than one node has (8); a replica runs on one node" in problem.message
    assert problem.allowed == "1 to 8; use more replicas for more devices"


def test_any_type_refuses_a_count_no_catalog_node_holds():
    found = problems_of(job_doc(one_group(accelerators={"count": 4096})))
    problem = found["spec.replicaGroups.0.accelerators.count"]
    assert "no accelerator type in the catalog allows 4096" in problem.message


def test_every_type_of_a_preference_list_must_allow_the_count():
    spec = one_group(accelerators={"count": 3, "type": ["H100", "910C"]})
    problem = problems_of(job_doc(spec))["spec.replicaGroups.0.accelerators.count"]
    assert "Ascend-910C" in problem.message


def test_a_fractional_share_needs_count_one():
    found = problems_of(job_doc(one_group(accelerators={"count": 2, "share": 0.5})))
    problem = found["spec.replicaGroups.0.accelerators.share"]
    assert problem.message == "a fractional share (0.5) needs count 1, got count 2"
    assert "count 1 with 0 < share < 1" in problem.allowed


def test_share_out_of_range_is_refused():
    found = problems_of(job_doc(one_group(accelerators={"share": 1.5})))
    problem = found["spec.replicaGroups.0.accelerators.share"]
    assert (problem.message, problem.allowed) == ("1.5 is out of range", "at most 1")


def test_unknown_accelerator_names_the_catalog_and_the_closest_name():
    spec = one_group(accelerators={"count": 8, "type": ["H100", "H1000"]})
    problem = problems_of(job_doc(spec))["spec.replicaGroups.0.accelerators.type.1"]
    assert problem.message == "unknown accelerator type 'H1000'; did you mean 'H100'?"
    assert problem.allowed.startswith("any, or a catalog name or alias (case-insensitive): ")
    for name in default_catalog().names():
        assert name in problem.allowed


def test_one_unknown_accelerator_name_is_reported_at_type():
    found = problems_of(job_doc(one_group(accelerators={"type": "TPUv5"})))
    assert (
        "unknown accelerator type 'TPUv5'"
        in found["spec.replicaGroups.0.accelerators.type"].message
    )


def test_a_type_listed_twice_under_two_aliases_is_refused():
    spec = one_group(accelerators={"type": ["H100", "h100-sxm-80gb"]})
    problem = problems_of(job_doc(spec))["spec.replicaGroups.0.accelerators.type.1"]
    assert problem.message == "'h100-sxm-80gb' is H100-SXM-80GB, already listed as type.0"


@pytest.mark.parametrize("value", ["2 hours", "1x", "h", "-5m", "1h1h", True, [1]])
def test_bad_durations_are_refused_with_the_accepted_forms(value):
    problem = problems_of(job_doc({**one_group(), "runtimeEstimate": value}))[
        "spec.runtimeEstimate"
    ]
    assert (
        "is not a duration" in problem.message
        or "repeats" in problem.message
        or ("negative" in problem.message)
    )
    assert '"2h"' in problem.allowed and "1h30m" in problem.allowed


def test_a_zero_runtime_estimate_is_out_of_range():
    problem = problems_of(job_doc({**one_group(), "runtimeEstimate": "0s"}))["spec.runtimeEstimate"]
    assert problem.allowed == "greater than 0"


@pytest.mark.parametrize(
    ("name", "fault"),
    [
        ("Llama", "it has uppercase letters"),
        ("llama_70b", "it contains '_'"),
        ("-llama", "it starts or ends with '-'"),
        ("x" * 64, "it has 64 characters"),
        ("", "it is empty"),
    ],
)
def test_bad_names_say_what_is_wrong_and_what_a_name_may_hold(name, fault):
    problem = problems_of(job_doc(one_group(), name=name))["metadata.name"]
    assert problem.message == f"{name!r} is not a valid name: {fault}"
    assert problem.allowed.startswith("lowercase letters, digits and '-'")


def test_group_names_and_queue_names_follow_the_same_rule():
    found = problems_of(job_doc({"queue": "Team A", **one_group(name="Worker")}))
    assert set(found) == {"spec.queue", "spec.replicaGroups.0.name"}


def test_duplicate_job_names_in_one_file_are_refused():
    text = yaml.safe_dump_all([job_doc(one_group(), "a"), job_doc(one_group(), "a")])
    with pytest.raises(SpecError) as caught:
        load_documents_text(text, "jobs.yaml")
    (problem,) = caught.value.problems
    assert problem.path == "documents[1].metadata.name"
    assert problem.message == "job name 'a' is already used by documents[0]"


def test_a_job_and_a_queue_may_share_a_name():
    jobs, queues = parse_documents([job_doc(one_group(), "a"), queue_doc({}, "a")])
    assert (jobs[0].name, queues[0].name) == ("a", "a")


def test_invalid_yaml_names_the_line():
    text = "apiVersion: suan.ai/v1\nkind: Job\nmetadata:\n  name: a\n   labels: x\n"
    with pytest.raises(SpecError) as caught:
        load_documents_text(text, "broken.yaml")
    (problem,) = caught.value.problems
    assert problem.path == "line 5"
    assert problem.message.startswith("invalid YAML: mapping values are not allowed here")


def test_a_key_written_twice_is_refused_at_its_path_with_its_line():
    text = "apiVersion: suan.ai/v1\nkind: Job\nkind: Queue\n"
    with pytest.raises(SpecError) as caught:
        load_documents_text(text)
    (problem,) = caught.value.problems
    assert (problem.path, problem.message) == ("documents[0].kind", "duplicate key 'kind' (line 3)")


def test_a_missing_file_is_a_spec_error(tmp_path):
    with pytest.raises(SpecError) as caught:
        load_documents(tmp_path / "nope.yaml")
    assert caught.value.problems[0].message.startswith("cannot read file")


def test_all_problems_of_a_file_come_in_one_error():
    documents = [
        job_doc(one_group(accelerators={"count": 3, "type": "910C"}), "a"),
        job_doc({"queue": "Q"}, "b"),
        {"kind": "Pod"},
        queue_doc({"guaranteed": {"TPU": 4}}),
    ]
    with pytest.raises(SpecError) as caught:
        parse_documents(documents, "many.yaml")
    assert [p.path for p in caught.value.problems] == [
        "documents[0].spec.replicaGroups.0.accelerators.count",
        "documents[1].spec.queue",
        "documents[2].kind",
        "documents[3].spec.guaranteed.TPU",
    ]


def test_wrong_types_are_not_coerced():
    found = problems_of(job_doc({**one_group(replicas="8"), "preemptible": "yes"}))
    assert found["spec.replicaGroups.0.replicas"].message == "expected an integer, got '8'"
    assert found["spec.preemptible"].message == "expected true or false, got 'yes'"


def test_missing_envelope_fields_are_named():
    found = problems_of({"kind": "Job", "spec": {}})
    assert found["apiVersion"].message == "required field is missing"
    assert found["metadata"].message == "required field is missing"
    found = problems_of({**job_doc({}), "apiVersion": "v1"})
    assert found["apiVersion"].allowed == "'suan.ai/v1'"


# --- semantics ------------------------------------------------------------------------------


def test_priority_is_an_integer_or_a_named_class():
    assert parse_job(job_doc({"priority": 42})).priority == 42
    assert parse_job(job_doc({"priority": "Critical"})).priority == 1000
    assert parse_job(job_doc({})).priority == 0
    problem = problems_of(job_doc({"priority": "urgent"}))["spec.priority"]
    assert problem.message == "unknown priority class 'urgent'"
    assert "low (-100), normal (0), high (100), critical (1000)" in problem.allowed


def test_elastic_replicas_is_the_largest_size_and_min_replicas_the_floor():
    group = parse_job(job_doc(one_group(replicas=8, elastic={"minReplicas": 2}))).groups[0]
    assert (group.replicas, group.min_replicas) == (8, 2)
    group = parse_job(job_doc(one_group(elastic={"minReplicas": 2, "maxReplicas": 6}))).groups[0]
    assert (group.replicas, group.min_replicas) == (6, 2)
    found = problems_of(
        job_doc(one_group(replicas=4, elastic={"minReplicas": 6, "maxReplicas": 8}))
    )
    assert found["spec.replicaGroups.0.elastic.maxReplicas"].message == (
        "maxReplicas (8) differs from replicas (4)"
    )
    assert found["spec.replicaGroups.0.elastic.minReplicas"].allowed == "1 to 4"


def test_a_group_without_accelerators_needs_none():
    (group,) = parse_job(job_doc(one_group(cpu="500m", memory="2Gi"))).groups
    assert (group.accelerators, group.cpu_milli, group.memory_mib) == (0, 500, 2048)


def test_the_shorthand_cannot_be_mixed_with_replica_groups():
    found = problems_of(job_doc({**one_group(), "replicas": 2, "cpu": 4}))
    assert set(found) == {"spec.replicas", "spec.cpu"}
    assert found["spec.cpu"].message == "cpu cannot be combined with replicaGroups"


def test_groups_share_one_command_and_environment():
    spec = {
        "command": ["python", "train.py"],
        "env": {"A": "1"},
        "replicaGroups": [
            {"name": "a", "env": {"B": 2}},
            {"name": "b", "env": {"B": "2"}, "command": ["python", "train.py"]},
        ],
    }
    job = parse_job(job_doc(spec))
    assert job.command == ("python", "train.py") and job.env == (("A", "1"), ("B", "2"))
    spec["replicaGroups"][1]["command"] = ["python", "serve.py"]
    spec["replicaGroups"][1]["env"] = {"B": "3"}
    found = problems_of(job_doc(spec))
    assert set(found) == {"spec.replicaGroups.1.command", "spec.replicaGroups.1.env"}


def test_group_names_are_unique_within_a_job():
    spec = {"replicaGroups": [{"name": "w"}, {"name": "w"}]}
    problem = problems_of(job_doc(spec))["spec.replicaGroups.1.name"]
    assert problem.message == "group name 'w' is already used by replicaGroups.0"


def test_checkpoint_takes_one_interval_form():
    assert parse_job(job_doc({"checkpoint": {"interval": "1h"}})).checkpoint_interval_s == 3600
    assert parse_job(job_doc({"checkpoint": {"intervalSeconds": 90}})).checkpoint_interval_s == 90
    both = {"checkpoint": {"interval": "1h", "intervalSeconds": 90}}
    assert "spec.checkpoint.intervalSeconds" in problems_of(job_doc(both))


def test_queue_quota_checks():
    spec = {
        "parent": "org",
        "guaranteed": {"H100": 8, "h100-sxm": 8, "TPU": 1},
        "borrowLimit": {"accelerators": -1},
        "weight": 0,
    }
    found = problems_of(queue_doc(spec), parse_queue)
    assert found["spec.guaranteed.h100-sxm"].message == (
        "'h100-sxm' and 'H100' both name H100-SXM-80GB"
    )
    assert found["spec.guaranteed.TPU"].allowed.startswith("accelerators (devices of any type)")
    assert found["spec.borrowLimit.accelerators"].allowed == "at least 0"
    assert found["spec.weight"].allowed == "greater than 0"
    lend = problems_of(
        queue_doc({"guaranteed": {"H100": 8}, "lendLimit": {"H100": 9}}), parse_queue
    )
    assert lend["spec.lendLimit.H100"].message == (
        "lends 9 of H100-SXM-80GB but is guaranteed only 8"
    )


def test_typed_guarantees_without_an_accelerators_total_guarantee_their_sum():
    """What the scheduler counts (suan.sched.quota) is what the spec checks: a queue that
    guarantees typed amounts and no `accelerators` total is guaranteed their sum, may lend
    up to that sum, and is not borrowing while it runs within it."""
    from suan.sched.quota import QuotaBook, request_vector

    typed = {"guaranteed": {"H100": 8, "910B": 4}}
    queue = parse_queue(queue_doc({**typed, "lendLimit": {"accelerators": 12}}))
    assert queue.lend_limit == {"accelerators": 12}
    lend = problems_of(queue_doc({**typed, "lendLimit": {"accelerators": 13}}), parse_queue)
    assert lend["spec.lendLimit.accelerators"].message == (
        "lends 13 of accelerators but is guaranteed only 12"
    )
    book = QuotaBook([parse_queue(queue_doc(typed))], {H100: 64, B910: 64})
    book.add("team", request_vector(H100, 8))
    book.add("team", request_vector(B910, 4))
    assert book.guaranteed("team", "accelerators") == 12
    assert not book.borrowing("team")


def test_queue_membership_reads_back_and_names_a_bad_member():
    members = parse_queue(queue_doc({"submitters": ["alice", "bob"], "viewers": ["*"]}))
    assert members.submitters == ("alice", "bob") and members.viewers == ("*",)
    assert not members.open
    assert parse_queue(queue_to_document(members)) == members
    assert parse_queue(queue_doc({})).open, "a queue without submitters is open to everyone"
    assert parse_queue(queue_doc({"submitters": ["*"]})).open
    assert not parse_queue(queue_doc({"submitters": []})).open, "[]: only its admins"
    found = problems_of(queue_doc({"submitters": ["Bob Smith"], "viewers": "carol"}), parse_queue)
    assert found["spec.submitters.0"].message == "'Bob Smith' is not a user name"
    assert "'*' for every user" in found["spec.submitters.0"].allowed
    assert "spec.viewers" in found


def test_queue_parents_must_be_in_the_file_and_form_a_tree():
    documents = [
        queue_doc({"parent": "b"}, "a"),
        queue_doc({"parent": "a"}, "b"),
        queue_doc({"parent": "nowhere"}, "c"),
    ]
    with pytest.raises(SpecError) as caught:
        parse_documents(documents)
    messages = {p.path: p.message for p in caught.value.problems}
    assert messages == {
        "documents[0].spec.parent": "queue tree has a cycle: a -> b -> a",
        "documents[1].spec.parent": "queue tree has a cycle: b -> a -> b",
        "documents[2].spec.parent": "parent queue 'nowhere' is not defined in this file",
    }


# --- units ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("2h", 7200),
        ("90m", 5400),
        ("3600s", 3600),
        ("1h30m", 5400),
        ("1d", 86400),
        (45, 45),
        ("12.5", 12.5),
        ("0.5h", 1800),
    ],
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds
    assert parse_duration(format_duration(float(seconds))) == seconds


@pytest.mark.parametrize(
    ("text", "mib"),
    [("64Gi", 65536), ("512Mi", 512), ("1Ti", 2**20), ("1GB", 954), ("64GiB", 65536), (100, 100)],
)
def test_memory_sizes(text, mib):
    assert parse_memory_mib(text) == mib
    assert parse_memory_mib(format_memory(mib)) == mib


@pytest.mark.parametrize(("text", "milli"), [(2, 2000), (0.5, 500), ("500m", 500), ("1.5", 1500)])
def test_cpu_amounts(text, milli):
    assert parse_cpu_milli(text) == milli
    assert parse_cpu_milli(format_cpu(milli)) == milli


@pytest.mark.parametrize(
    ("parse", "value"),
    [
        (parse_memory_mib, "lots"),
        (parse_memory_mib, -1),
        (parse_cpu_milli, "2 cores"),
        (parse_cpu_milli, float("nan")),
        (parse_duration, float("inf")),
    ],
)
def test_bad_units_raise_unit_errors_with_the_accepted_forms(parse, value):
    with pytest.raises(UnitError) as caught:
        parse(value)
    assert caught.value.allowed


# --- properties -----------------------------------------------------------------------------


def _allowed_counts(name: str | None) -> list[int]:
    if name is None:
        return list(range(1, 9))
    accel = default_catalog().get(name)
    return [
        n
        for n in range(1, accel.devices_per_node + 1)
        if accel.allocation.allows(n, accel.devices_per_node)
    ]


_TYPES: list[list[str]] = [[], ["H100"], ["910C"], ["P800"], ["H100", "H800", "910B"], ["a100"]]
_NAMES = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,10}[a-z0-9])?", fullmatch=True)


@st.composite
def _accelerators(draw) -> dict[str, Any] | None:
    types = draw(st.sampled_from([None, *_TYPES]))
    if types is None:
        return None
    strictest = types[1] if types[:1] == ["H100"] and len(types) > 1 else None
    counts = _allowed_counts(types[0] if types else strictest)
    for name in types:
        counts = [n for n in counts if n in _allowed_counts(name)]
    count = draw(st.sampled_from(counts))
    request: dict[str, Any] = {"count": count}
    if types:
        request["type"] = types if len(types) > 1 else types[0]
    if count == 1 and draw(st.booleans()):
        request["share"] = draw(st.integers(1, 1000)) / 1000
    return request


_CHARS = st.characters(exclude_characters="\x00", exclude_categories=("Cs",))
"""Characters a spec's text may hold: no NUL, no surrogates."""


@st.composite
def _groups(draw) -> list[dict[str, Any]]:
    names = draw(st.lists(_NAMES, min_size=1, max_size=3, unique=True))
    groups = []
    for name in names:
        group: dict[str, Any] = {"name": name, "replicas": draw(st.integers(1, 64))}
        accelerators = draw(_accelerators())
        if accelerators:
            group["accelerators"] = accelerators
        group["cpu"] = draw(st.sampled_from([0, 1, 0.25, "1500m", 96]))
        group["memory"] = draw(st.sampled_from([0, "512Mi", "64Gi", "1.5Gi", "1Ti", 700]))
        if draw(st.booleans()):
            group["elastic"] = {"minReplicas": draw(st.integers(1, group["replicas"]))}
        groups.append(group)
    return groups


@st.composite
def _job_documents(draw) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "queue": draw(_NAMES),
        "user": draw(st.text(_CHARS, max_size=8)),
        "priority": draw(
            st.one_of(st.integers(-1000, 1000), st.sampled_from(list(PRIORITY_CLASSES)))
        ),
        "preemptible": draw(st.booleans()),
        "replicaGroups": draw(_groups()),
        "restartPolicy": draw(st.sampled_from(["never", "on-failure", "always"])),
        "maxRestarts": draw(st.integers(0, 20)),
        "topology": {
            "replicaInDomain": draw(st.booleans()),
            "within": draw(st.sampled_from([None, "supernode", "rack", "block", "zone"])),
            "placement": draw(st.sampled_from(["pack", "spread"])),
        },
    }
    if draw(st.booleans()):
        spec["runtimeEstimate"] = draw(st.sampled_from(["2h", "90m", 3600, 12.5, "1d2h3m4s"]))
    if draw(st.booleans()):
        spec["typeSpeeds"] = draw(st.dictionaries(
            st.sampled_from(["V100", "P100", "k80", "H100"]),
            st.one_of(st.integers(1, 10), st.floats(0.01, 10.0)), min_size=1))
    if draw(st.booleans()):
        spec["series"] = draw(_NAMES)
    if draw(st.booleans()):
        spec["checkpoint"] = {"intervalSeconds": draw(st.integers(1, 10**6))}
    if draw(st.booleans()):
        program = draw(st.text(_CHARS, min_size=1, max_size=6).filter(str.strip))
        spec["command"] = [program, *draw(st.lists(st.text(_CHARS, max_size=6), max_size=3))]
        spec["env"] = draw(
            st.dictionaries(
                st.from_regex(r"[A-Z_][A-Z0-9_]{0,6}", fullmatch=True),
                st.text(_CHARS, max_size=6),
                max_size=3,
            )
        )
    return job_doc(spec, name=draw(_NAMES))


@settings(
    derandomize=True,
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(_job_documents())
def test_a_job_read_from_a_file_and_stored_as_json_is_the_job_checked(document):
    """What the control plane stores (the document as JSON) parses to the Job that a file's
    text gave: the spec is checked once and means the same after a restart."""
    job = parse_job(document)
    text = yaml.safe_dump(document)
    [from_text], _ = load_documents_text(text)
    [read] = flatten_documents(read_stream(text, "text"))
    assert from_text == job
    assert parse_job(json.loads(json.dumps(read))) == job


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(_job_documents())
def test_any_valid_job_round_trips_through_its_document(document):
    job = parse_job(document)
    assert isinstance(job, Job)
    for group in job.groups:
        assert all(name in default_catalog().names() for name in group.accelerator_types)
    assert parse_job(job_to_document(job)) == job
    assert parse_job(yaml.safe_load(yaml.safe_dump(job_to_document(job)))) == job


_JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=10),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    paths = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            paths += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            paths += _paths(value, (*prefix, index))
    return paths


@settings(max_examples=200, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(_job_documents(), st.data())
def test_any_mutation_gives_a_job_or_a_spec_error_and_nothing_else(document, data):
    mutated = copy.deepcopy(document)
    path = data.draw(st.sampled_from(_paths(mutated)[1:]))
    junk = data.draw(_JUNK)
    parent = mutated
    for key in path[:-1]:
        parent = parent[key]
    if data.draw(st.booleans()) and isinstance(parent, dict):
        parent[data.draw(st.text(min_size=1, max_size=6))] = junk
    else:
        parent[path[-1]] = junk
    try:
        job = parse_job(mutated)
    except SpecError as error:
        assert error.problems and all(isinstance(p, FieldProblem) for p in error.problems)
    else:
        assert isinstance(job, Job)


def test_an_operator_catalog_decides_which_names_exist():
    catalog = Catalog([default_catalog().get("H100")])
    job = parse_job(job_doc(one_group(accelerators={"type": "h100-sxm"})), catalog=catalog)
    assert job.groups[0].accelerator_types == (H100,)
    with pytest.raises(SpecError) as caught:
        parse_job(job_doc(one_group(accelerators={"type": "910B"})), catalog=catalog)
    (problem,) = caught.value.problems
    assert problem.allowed == "any, or a catalog name or alias (case-insensitive): H100-SXM-80GB"


# --- per-type speeds ------------------------------------------------------------------------


def test_type_speeds_become_canonical_pairs_fastest_first():
    job = parse_job(job_doc({**one_group(accelerators={"count": 1}),
                             "typeSpeeds": {"k80": 0.1, "V100": 1, "P100": 0.65}}))
    assert job.type_speeds == (("V100-16GB", 1.0), ("P100", 0.65), ("K80", 0.1))
    assert job.speed_on("P100") == 0.65 and job.speed_on("H100-SXM-80GB") is None
    assert job_to_document(job)["spec"]["typeSpeeds"] == {"V100-16GB": 1, "P100": 0.65,
                                                           "K80": 0.1}
    assert parse_job(job_to_document(job)) == job


def test_a_series_is_a_name_and_survives_the_round_trip():
    job = parse_job(job_doc({**one_group(), "series": "lr-sweep-3"}))
    assert job.series == "lr-sweep-3"
    assert parse_job(job_to_document(job)) == job
    with pytest.raises(SpecError) as caught:
        parse_job(job_doc({**one_group(), "series": "Bad Name!"}))
    [problem] = caught.value.problems
    assert problem.path.endswith("series")


def test_jobs_that_differ_only_in_speeds_have_different_shapes():
    slow_k80 = parse_job(job_doc({**one_group(), "typeSpeeds": {"V100": 1, "K80": 0.1}}))
    fast_k80 = parse_job(job_doc({**one_group(), "typeSpeeds": {"V100": 1, "K80": 0.9}}))
    plain = parse_job(job_doc(one_group()))
    assert len({slow_k80.shape_id, fast_k80.shape_id, plain.shape_id}) == 3


@pytest.mark.parametrize(
    ("speeds", "path", "message", "allowed"),
    [
        ({"V100": 0}, "spec.typeSpeeds.V100", "0 is out of range", "greater than 0"),
        ({"K80": -0.5}, "spec.typeSpeeds.K80", "-0.5 is out of range", "greater than 0"),
        ({"V100": "fast"}, "spec.typeSpeeds.V100", "expected a number, got 'fast'", ""),
        ({"V100": True}, "spec.typeSpeeds.V100", "expected a number, got True", ""),
        ({"V1000": 1}, "spec.typeSpeeds.V1000",
         "unknown accelerator type 'V1000'; did you mean 'V100'?", "a catalog name or alias"),
        ({"V100": 1, "v100-16gb": 2}, "spec.typeSpeeds.v100-16gb",
         "'v100-16gb' and 'V100' both name V100-16GB", "each accelerator type once"),
        ([1, 0.5], "spec.typeSpeeds", "expected a mapping, got a list", ""),
    ],
)
def test_bad_type_speeds_name_the_type_what_was_wrong_and_what_is_allowed(
        speeds, path, message, allowed):
    found = problems_of(job_doc({**one_group(), "typeSpeeds": speeds}))
    assert set(found) == {path}
    assert found[path].message == message
    assert allowed in (found[path].allowed or "")


# --- what can never run -----------------------------------------------------------------------


def test_nul_and_surrogates_are_refused_anywhere_and_reported_printably():
    document = job_doc({"command": ["python", "a\x00"], "env": {"K\ud800": "v"}})
    document["metadata"]["labels"] = {"team": "\udfff"}
    found = problems_of(document)
    assert "NUL" in found["spec.command.1"].message
    assert "surrogate" in found["spec.env.K\\ud800"].message
    assert "surrogate" in found["metadata.labels.team"].message
    with pytest.raises(SpecError) as caught:
        parse_job(document)
    str(caught.value).encode("utf-8")  # printable: no raw NUL or surrogate left
    assert "\x00" not in str(caught.value)


def test_a_queue_name_with_nul_is_refused():
    found = problems_of(queue_doc({"admins": ["al\x00ice"]}), parse=parse_queue)
    assert "NUL" in found["spec.admins.0"].message


def test_bounds_on_restarts_durations_and_replicas():
    assert parse_job(job_doc({"maxRestarts": 1000, "runtimeEstimate": "365d"})).max_restarts == 1000
    found = problems_of(
        job_doc({**one_group(replicas=100_001), "maxRestarts": 1001, "runtimeEstimate": "8761h"})
    )
    assert found["spec.maxRestarts"].allowed == "at most 1000"
    assert found["spec.replicaGroups.0.replicas"].allowed == "at most 100000"
    assert "at most 365d" in found["spec.runtimeEstimate"].allowed


def test_a_file_nested_too_deep_or_too_large_is_refused_before_parsing_on(tmp_path):
    deep = "a: " + "[" * 65 + "]" * 65
    with pytest.raises(SpecError) as caught:
        load_documents_text(deep)
    [problem] = caught.value.problems
    assert problem.path == "line 1" and "more than 64 levels" in problem.message
    with pytest.raises(SpecError, match="bytes, more than the limit"):
        load_documents_text("#" * 1_000_001)
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(SpecError, match="not UTF-8"):
        load_documents(latin1)


def test_nesting_up_to_the_limit_is_read():
    with pytest.raises(SpecError) as caught:  # read, then refused for what it is, not its depth
        load_documents_text("a: " + "[" * 63 + "]" * 63)
    assert "levels" not in str(caught.value)
