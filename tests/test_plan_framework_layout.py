"""What a framework fixes for the user: torchtitan's per-op checkpointing, its eager fp32 loss,
and FSDP weights gathered once per step under pipeline parallelism."""

import json

import pytest
from typer.testing import CliRunner

from suan.cli.main import cli
from suan.plan import op_sac
from suan.plan.estimate import estimate
from suan.plan.framework_layout import fused_loss, gather_once, recompute_mode
from suan.plan.hardware import hardware_for
from suan.plan.layout import Layout, Workload
from suan.plan.memory import GIB
from suan.plan.models import load_model

RUNNER = CliRunner()
LLAMA_8B = ["--model", "llama3-8b", "--accelerator", "H100", "--devices", "8",
            "--global-batch", "16", "--micro-batch", "2", "--seq", "8192", "--zero", "3"]


def run(*args: str) -> dict:
    done = RUNNER.invoke(cli, ["plan", "estimate", *args, "--json"])
    assert done.exit_code == 0, done.output
    return json.loads(done.stdout)


def test_per_op_checkpointing_saves_every_other_matmul_and_the_attention_output():
    llama = load_model("llama3-8b")
    h, kv, ffn = 4096, 8 * 128, 14336
    # forward order Q, K, V, O, gate, up, down: K, O and up are recomputed
    recomputed = h * kv + h * h + h * ffn
    every = h * h + 2 * h * kv + h * h + 3 * h * ffn
    assert op_sac.recomputed_share(llama) == pytest.approx(recomputed / every)
    saved = h + kv + ffn + h  # Q, V, gate, down outputs
    expected = 2 * (saved + h + h + 4 * 32 / 2)  # + block input + attention output (+ lse)
    assert op_sac.stored_per_token(llama, Layout()) == pytest.approx(expected)
    split = op_sac.stored_per_token(llama, Layout(tp=8, sequence_parallel=True))
    assert split == pytest.approx(expected / 8)


def test_op_keeps_less_than_selective_and_pays_for_its_recompute_in_time():
    llama, h100 = load_model("llama3-8b"), hardware_for("H100")
    workload = Workload(seq=8192, global_batch=16, attention="flash2")
    plans = {mode: estimate(llama, h100, Layout(dp=8, zero=3, micro_batch=2, recompute=mode),
                            workload) for mode in ("none", "selective", "op", "full")}
    activations = {mode: plan.memory.activations for mode, plan in plans.items()}
    assert activations["full"] < activations["op"] < activations["selective"]
    assert plans["selective"].step_time_s < plans["op"].step_time_s < plans["full"].step_time_s
    assert plans["op"].hfu > plans["op"].mfu


def test_torchtitan_selective_is_per_op_with_its_eager_loss_and_says_so():
    assert recompute_mode("selective", "torchtitan")[0] == "op"
    assert recompute_mode("selective", "megatron") == ("selective", "")
    assert recompute_mode("full", "torchtitan") == ("full", "")
    assert not fused_loss("torchtitan") and fused_loss("megatron") and fused_loss(None)
    titan = run(*LLAMA_8B, "--framework", "torchtitan")
    megatron = run(*LLAMA_8B, "--framework", "megatron")
    assert titan["layout"]["recompute"] == "op"
    assert any("per-op" in note for note in titan["notes"])
    assert megatron["layout"]["recompute"] == "selective"
    assert titan["memory_gib"]["activations"] < megatron["memory_gib"]["activations"]
    assert any("eager F.cross_entropy" in note for note in titan["notes"])
    assert not any("cross_entropy" in note for note in megatron["notes"])
    full = [*LLAMA_8B, "--recompute", "full"]
    eager = run(*full, "--framework", "torchtitan")["memory_gib"]["activations"]
    fused = run(*full, "--framework", "megatron")["memory_gib"]["activations"]
    logits = 2 * 8192 * 128256 * (14 - 4) / GIB  # eager 14 B per logit against fused 4 B
    assert eager - fused == pytest.approx(logits, rel=0.01)


def test_torchtitan_pipelines_keep_fsdp_weights_and_gradients_for_the_step():
    assert gather_once("torchtitan", 8, 3)[0] is True
    assert gather_once("torchtitan", 1, 3) == (False, "")
    assert gather_once("torchtitan", 8, 1) == (False, "")
    assert gather_once("megatron", 8, 3) == (False, "")
    args = ["--model", "llama3-70b", "--accelerator", "H100", "--devices", "64", "--tp", "8",
            "--pp", "4", "--global-batch", "64", "--seq", "4096", "--zero", "3",
            "--recompute", "full"]
    titan = run(*args, "--framework", "torchtitan")
    plain = run(*args, "--framework", "pytorch")
    assert any("gathered once" in note for note in titan["notes"])
    stage_params = 80 / 4 * load_model("llama3-70b").layer_params(False) / 8
    assert titan["memory_gib"]["weights"] > 2 * stage_params / GIB
    assert titan["memory_gib"]["gradients"] > 4 * stage_params / GIB
    assert plain["memory_gib"]["weights"] < titan["memory_gib"]["weights"] / 2
    breakdown = titan["time_breakdown_s"]["dp_exposed"]
    assert breakdown < plain["time_breakdown_s"]["dp_exposed"]


def test_megatron_bridge_overlaps_tensor_parallel_traffic_and_the_flag_wins():
    from suan.plan.framework_layout import tp_overlap
    from suan.plan.timing import DESIGNED_OVERLAP_INTERFERENCE

    assert tp_overlap(None, "megatron-bridge", 4)[0] is True
    assert tp_overlap(None, "megatron-bridge", 1) == (False, "")
    assert tp_overlap(None, "megatron", 4) == (False, "")
    assert tp_overlap(False, "megatron-bridge", 4) == (False, "")
    args = ["--model", "llama3-70b", "--accelerator", "H100", "--devices", "64", "--tp", "4",
            "--pp", "4", "--global-batch", "64", "--seq", "8192", "--recompute", "none"]
    bridge = run(*args, "--framework", "megatron-bridge")
    serial = run(*args, "--framework", "megatron-bridge", "--no-tp-comm-overlap")
    assert any("tensor-parallel overlap" in note for note in bridge["notes"])
    assert bridge["layout"]["tp_comm_overlap"] and not serial["layout"]["tp_comm_overlap"]
    assert bridge["layout"]["sequence_parallel"] is True
    exposed = bridge["time_breakdown_s"]["tp_comm"] / serial["time_breakdown_s"]["tp_comm"]
    assert exposed == pytest.approx(DESIGNED_OVERLAP_INTERFERENCE, rel=0.01)
    assert bridge["tokens_per_s"] > serial["tokens_per_s"]


def test_context_parallel_exchange_types_cost_what_they_move():
    args = ["--model", "llama3-8b", "--accelerator", "H100", "--devices", "64", "--tp", "2",
            "--cp", "4", "--global-batch", "8", "--seq", "131072", "--zero", "1",
            "--recompute", "full"]
    ring, gather, a2a = (run(*args, "--cp-comm", kind) for kind in ("p2p", "all_gather", "a2a"))
    cp_time = {name: plan["time_breakdown_s"]["cp_comm"]
               for name, plan in (("p2p", ring), ("all_gather", gather), ("a2a", a2a))}
    assert all(seconds > 0 for seconds in cp_time.values())
    assert cp_time["a2a"] > cp_time["all_gather"]  # a2a also moves Q and the output
    assert ring["memory_gib"] == gather["memory_gib"]
    refused = RUNNER.invoke(cli, ["plan", "estimate", *args[:8], "--cp", "8", *args[10:],
                                  "--cp-comm", "a2a", "--json"])
    assert "kv_heads" in str(refused.exception) or "key/value heads" in str(refused.exception)
    unknown = RUNNER.invoke(cli, ["plan", "estimate", *args, "--cp-comm", "smoke-signals"])
    assert "cp_comm" in str(unknown.exception)


def test_megatron_bridge_overlaps_data_parallel_traffic_by_design():
    from suan.plan.framework_layout import dp_overlap

    assert dp_overlap(None, "megatron-bridge")[0] is True
    assert dp_overlap(None, "torchtitan") == (False, "")
    assert dp_overlap(False, "megatron-bridge") == (False, "")
    args = ["--model", "llama3-70b", "--accelerator", "H100", "--devices", "64",
            "--global-batch", "128", "--micro-batch", "2", "--seq", "8192", "--zero", "3",
            "--recompute", "full", "--framework", "megatron-bridge"]
    designed = run(*args)
    serial = run(*args, "--no-dp-comm-overlap")
    assert any("data-parallel overlap" in note for note in designed["notes"])
    assert designed["time_breakdown_s"]["dp_exposed"] < serial["time_breakdown_s"]["dp_exposed"]


def test_a_rack_wide_nvlink_domain_runs_collectives_at_link_speed():
    gb200 = hardware_for("GB200-NVL72")
    assert gb200.domain_size == 72
    assert gb200.group_bandwidth_gbs(64) == gb200.group_bandwidth_gbs(4)
    assert gb200.group_bandwidth_gbs(64) > 4 * gb200.group_bandwidth_gbs(128)
    h100 = hardware_for("H100")
    assert h100.domain_size == 8 and h100.group_nodes(16) == 2 and gb200.group_nodes(64) == 1


def test_search_ranks_layouts_as_the_named_framework_runs_them():
    from suan.plan.advice import plan_search

    titan = plan_search("llama3-8b", "H100", 64, seq=8192, top=50, framework="torchtitan")
    assert titan.plans and all(plan.layout.recompute != "selective" for plan in titan.plans)
    assert not titan.plans[0].workload.fused_loss
    bridge = plan_search("llama3-70b", "H100", 64, seq=4096, top=20,
                         framework="Megatron-Bridge")
    assert all(plan.layout.dp_overlap for plan in bridge.plans)
    assert all(plan.layout.tp_overlap == (plan.layout.tp > 1) for plan in bridge.plans)
    plain = plan_search("llama3-8b", "H100", 64, seq=8192, top=5)
    assert plain.plans[0].workload.fused_loss and not plain.plans[0].layout.dp_overlap


def test_compare_ranks_each_type_as_the_named_framework_runs_it():
    args = ["plan", "compare", "--model", "llama3-70b", "--devices", "64",
            "--accelerators", "H100,H200", "--seq", "4096", "--json"]
    runs = {name: RUNNER.invoke(cli, [*args, *extra])
            for name, extra in (("bridge", ["--framework", "megatron-bridge"]), ("plain", []))}
    assert all(done.exit_code == 0 for done in runs.values()), runs
    bridge, plain = (json.loads(runs[name].stdout) for name in ("bridge", "plain"))
    assert all(entry["plan"] for entry in bridge + plain)
    assert all(entry["plan"]["layout"]["dp_comm_overlap"] for entry in bridge)
    assert not any(entry["plan"]["layout"]["dp_comm_overlap"] for entry in plain)


def test_a2a_needs_cp_to_divide_the_key_value_heads_of_one_tp_rank():
    from suan.plan.layout import layout_problems

    llama = load_model("llama3-70b")  # 8 key/value heads
    workload = Workload(seq=8192, global_batch=8)

    def a2a_problems(tp: int, cp: int) -> list[str]:
        layout = Layout(tp=tp, cp=cp, cp_comm="a2a")
        return [problem.message for problem in layout_problems(llama, layout, workload)
                if "a2a" in problem.message]

    assert a2a_problems(tp=2, cp=4) == []
    assert a2a_problems(tp=4, cp=4) == [
        "a2a splits heads: cp 4 does not divide the 2 key/value heads left per tp rank "
        "(8 / tp 4)"]
    assert a2a_problems(tp=16, cp=2)  # each rank holds one replicated head: nothing to split


def test_searched_plans_name_the_framework_rules_they_follow():
    from suan.plan.advice import plan_search

    found = plan_search("llama3-70b", "H100", 64, seq=4096, top=3, framework="megatron-bridge")
    assert all(any("data-parallel overlap" in note for note in plan.notes)
               for plan in found.plans)


def test_fsdp_kept_for_the_step_gathers_its_weights_once():
    from suan.plan.timing import _dp_seconds

    model, h100 = load_model("llama3-70b"), hardware_for("H100")
    workload = Workload(seq=4096, global_batch=64)
    per_micro = Layout(tp=8, pp=4, dp=2, zero=3)
    once = Layout(tp=8, pp=4, dp=2, zero=3, gather_once=True)
    # ZeRO-3 pays two weight gathers and one gradient reduce-scatter; kept weights pay one
    # gather: with bf16 weights and gradients both are the same size, so 3 : 2
    ratio = _dp_seconds(model, once, workload, h100) / _dp_seconds(model, per_micro, workload,
                                                                   h100)
    assert ratio == pytest.approx(2 / 3, rel=0.02)
