"""Published measurements → planner inputs: accelerators, models, ZeRO text, FLOP conventions."""

import pytest

from suan.plan.flops import model_flops_per_token
from suan.plan.rows import H100_96GB, _accelerator, _zero, hardware_of, parse_row


def _record(**overrides: str) -> dict[str, str]:
    record = {
        "row_id": "T1", "source_group": "example", "model_name": "Llama 3 70B",
        "num_layers": "80", "hidden_size": "8192", "num_attention_heads": "64",
        "num_kv_heads": "8", "ffn_hidden_size": "28672", "vocab_size": "128256",
        "seq_len": "8192", "global_batch_seqs": "512", "micro_batch_seqs": "1",
        "hardware": "NVIDIA H100 80GB SXM", "num_accelerators": "512", "tp": "8", "pp": "4",
        "dp": "16", "cp": "1", "sequence_parallel": "yes", "virtual_pp": "", "zero_or_fsdp":
        "distributed optimizer", "activation_recompute": "selective", "precision": "bf16",
        "achieved_tflops_per_gpu": "", "tokens_per_s_per_gpu": "", "iter_time_s": "",
        "mem_GiB_per_gpu": "", "mfu_pct": "", "peak_tflops_assumed": "",
        "flops_counting_note": "",
    }
    record.update(overrides)
    return record


@pytest.mark.parametrize(("text", "name"), [
    ("NVIDIA H800 80GB", "H800"), ("NVIDIA H20", "H20"), ("H200 SXM", "H200"),
    ("NVIDIA H100 80GB", "H100"), ("NVIDIA A100 40GB", "A100-40GB"),
    ("NVIDIA A100 80GB SXM", "A100-80GB"), ("Ascend 910B", "Ascend-910B"),
    ("NVIDIA H100 96GB HBM2e", H100_96GB), ("TPU v4", None),
])
def test_hardware_text_maps_to_catalog_types(text, name):
    assert _accelerator(text) == name


def test_h100_96gb_variant_keeps_its_own_bandwidth_and_memory():
    variant = hardware_of(H100_96GB)
    assert variant.memory_gib == 96 and variant.hbm_gbs == 2400
    assert hardware_of("H100").bf16_tflops > variant.bf16_tflops


@pytest.mark.parametrize(("text", "stage"), [
    ("FSDP FULL_SHARD (ZeRO-3-like)", 3), ("ZeRO stage 1", 1), ("distributed optimizer", 1),
    ("none (Megatron DDP)", 0), ("Megatron FSDP (FSDP=1)", 3), ("SHARD_GRAD_OP", 2),
])
def test_zero_stage_text(text, stage):
    assert _zero(text) == stage


def test_llama_family_rows_are_gated_and_untied():
    row = parse_row(_record(tokens_per_s_per_gpu="500"))
    assert row is not None
    assert row.model.gated_mlp and not row.model.tied_embeddings and row.model.kv_heads == 8
    assert row.layout.zero == 1 and row.layout.tp == 8 and row.layout.sequence_parallel


def test_tflops_only_rows_are_read_with_their_convention():
    full = parse_row(_record(achieved_tflops_per_gpu="400"))
    causal = parse_row(_record(achieved_tflops_per_gpu="400",
                               flops_counting_note="Megatron causal attention count"))
    assert full is not None and causal is not None
    expected = 400e12 / model_flops_per_token(full.model, 8192, "full")
    assert full.tokens_per_s_per_device == pytest.approx(expected)
    assert causal.tokens_per_s_per_device > full.tokens_per_s_per_device
    by_mfu = parse_row(_record(mfu_pct="40", peak_tflops_assumed="1000"))
    assert by_mfu.tokens_per_s_per_device == pytest.approx(expected)


def test_rows_without_batch_accelerator_or_measurement_are_skipped():
    assert parse_row(_record(global_batch_seqs="", tokens_per_s_per_gpu="5")) is None
    assert parse_row(_record(hardware="TPU v4", tokens_per_s_per_gpu="5")) is None
    assert parse_row(_record()) is None


def test_moe_columns_make_an_moe_model():
    row = parse_row(_record(model_name="Mixtral 8x7B", num_layers="32", hidden_size="4096",
                            num_attention_heads="32", ffn_hidden_size="14336",
                            moe_num_experts="8", moe_topk="2", moe_expert_ffn_size="14336",
                            tp="1", pp="1", dp="512", tokens_per_s_per_gpu="1000"))
    assert row.model.is_moe and row.model.topk == 2 and row.model.expert_ffn == 14336


@pytest.mark.parametrize(("text", "mode"), [
    ("selective (attention core only)", "selective"), ("none", "none"), ("no", "none"),
    ("full (every layer)", "full"), ("full (activation checkpointing)", "full"),
    ("yes", "full"), ("", "selective"),
])
def test_recompute_text(text, mode):
    from suan.plan.rows import _recompute
    assert _recompute(text) == mode


def test_blank_dp_is_derived_from_the_device_count():
    row = parse_row(_record(dp="", tokens_per_s_per_gpu="500"))
    assert row.layout.dp == 512 // (8 * 4)
