"""The NVIDIA and AMD parsers on real captured tool output (tests/fixtures/devices/*/SOURCE),
and their refusal of anything else."""

from __future__ import annotations

import json

import pytest
from devices_helpers import A10G, A100, RX6600, T4, a10g_with

from suan.devices import amd, nvidia
from suan.devices.model import UnexpectedOutput


def signals(reading) -> dict[str, float | str]:
    return {signal.name: signal.value for signal in reading.signals}


def test_a100_in_mig_mode_reads_identity_memory_and_healthy_counters():
    (gpu,) = nvidia.parse(A100.read_text())
    assert (gpu.index, gpu.model, gpu.memory_mib) == (0, "NVIDIA A100-SXM4-80GB", 81920)
    assert gpu.uuid == "GPU-513536b6-7d19-9063-b049-1e69664bb298"
    found = signals(gpu)
    assert found["ecc_uncorrectable"] == 0 and found["ecc_uncorrectable_aggregate"] == 0
    assert found["hw_slowdown"] == "Not Active" and found["thermal_throttle"] == "Not Active"
    assert found["temperature_c"] == 27 and found["temperature_margin_c"] == 89 - 27
    assert found["reset_required"] == "No" and found["drain_and_reset_recommended"] == "No"
    assert "remapped_rows_pending" not in found  # N/A under MIG: no signal, not a guess
    assert "retired_pages_pending" not in found


def test_a10g_older_driver_reads_throttle_reasons_and_remapped_rows():
    (gpu,) = nvidia.parse(A10G.read_text())
    assert (gpu.model, gpu.memory_mib) == ("NVIDIA A10G", 23028)
    found = signals(gpu)
    assert found["remapped_rows_pending"] == "No" and found["remapped_rows_failure"] == "No"
    assert found["remapped_rows_uncorrectable"] == 0
    assert found["power_brake"] == "Not Active"
    assert found["temperature_margin_c"] == 95 - 17
    assert "reset_required" not in found  # the 515 driver has no gpu_reset_status


def test_a10g_faults_show_in_its_signals_with_the_tools_words():
    (gpu,) = nvidia.parse(
        a10g_with(
            ecc_uncorrectable="3", remap_pending="Yes", hw_slowdown="Active", temperature="96 C"
        )
    )
    found = signals(gpu)
    assert found["ecc_uncorrectable"] == 3 and found["ecc_uncorrectable_aggregate"] == 0
    assert found["remapped_rows_pending"] == "Yes"
    assert found["hw_slowdown"] == "Active" and found["thermal_throttle"] == "Not Active"
    assert found["temperature_margin_c"] == -1
    details = {signal.name: signal.detail for signal in gpu.signals}
    assert details["ecc_uncorrectable"] == "volatile uncorrectable ECC errors: 3"
    assert details["hw_slowdown"] == "clock slowdown hw_slowdown: Active"


def test_t4_reads_page_retirement_where_row_remapping_does_not_exist():
    (gpu,) = nvidia.parse(T4.read_text())
    assert (gpu.model, gpu.memory_mib) == ("Tesla T4", 15360)
    found = signals(gpu)
    assert found["retired_pages_pending"] == "No" and found["retired_pages"] == 0
    assert "remapped_rows_pending" not in found
    assert found["temperature_margin_c"] == 93 - 40


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (
            "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.",
            "not XML",
        ),
        ("<?xml version='1.0'?><other/>", "not <nvidia_smi_log>"),
        (
            "<nvidia_smi_log><gpu id='0'><uuid>GPU-x</uuid></gpu></nvidia_smi_log>",
            "no <product_name>",
        ),
    ],
)
def test_nvidia_refuses_output_it_does_not_recognise(text, words):
    with pytest.raises(UnexpectedOutput, match=words):
        nvidia.parse(text)


def test_amd_rx6600_reads_ecc_throttle_and_temperatures():
    (gpu,) = amd.parse(RX6600.read_text())
    assert (gpu.index, gpu.memory_mib) == (0, 8176)
    found = signals(gpu)
    assert found == {
        "ecc_uncorrectable": 0,
        "ecc_correctable": 0,
        "ecc_deferred": 0,
        "throttled": "UNTHROTTLED",
        "temperature_c": 37,
        "memory_temperature_c": 32,
    }


def test_amd_reads_the_gpu_data_wrapper_of_newer_releases_the_same():
    listed = json.loads(RX6600.read_text())
    assert amd.parse(json.dumps({"gpu_data": listed})) == amd.parse(RX6600.read_text())


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("amd-smi: command failed", "not JSON"),
        ('{"gpus": []}', "neither a list"),
        ('[{"usage": {}}]', "no integer 'gpu'"),
    ],
)
def test_amd_refuses_output_it_does_not_recognise(text, words):
    with pytest.raises(UnexpectedOutput, match=words):
        amd.parse(text)


@pytest.mark.parametrize("module", [nvidia, amd])
def test_every_signal_a_parser_emits_is_documented_in_its_signals(module):
    text = A10G.read_text() if module is nvidia else RX6600.read_text()
    emitted = {signal.name for reading in module.parse(text) for signal in reading.signals}
    assert emitted <= set(module.SIGNALS)


def test_amd_per_block_uncorrectable_counts_become_one_signal_per_faulty_block():
    (entry,) = json.loads(RX6600.read_text())
    entry["ecc_blocks"] = {  # the per-block shape amd-smi prints on Instinct GPUs
        "UMC": {"correctable_count": 4, "uncorrectable_count": 2, "deferred_count": 0},
        "GFX": {"correctable_count": 0, "uncorrectable_count": 0, "deferred_count": 0},
    }
    (gpu,) = amd.parse(json.dumps([entry]))
    blocks = [s for s in gpu.signals if s.name == "ecc_block_uncorrectable"]
    assert [(s.value, s.detail) for s in blocks] == [
        (2, "uncorrectable ECC errors in block UMC: 2")
    ]
