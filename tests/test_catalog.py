"""The accelerator catalog: built-in entries, allocation rules, operator files, `suan catalog`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from suan.catalog import load_catalog
from suan.catalog.loader import ALWAYS_SOURCED, parse_catalog_document
from suan.catalog.model import Catalog, roofline_relative_speed
from suan.cli.main import cli
from suan.errors import SpecError, UnknownAcceleratorError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "catalog" / "operator-types.yaml"
DOCS = ROOT / "docs" / "catalog.md"

# Every type the project promises, with aliases written the way traces and tools spell them.
REQUIRED: dict[str, list[str]] = {
    "A100-40GB": ["a100-sxm4-40gb", "A100-40G"],
    "A100-80GB": ["A100", "a100_sxm4_80gb"],
    "A800": ["a800"],
    "H100-SXM-80GB": ["H100", "h100-sxm", "H100 SXM5"],
    "H800": ["h800"],
    "H20": ["h20"],
    "H200": ["h200"],
    "L40S": ["l40s"],
    "RTX-4090": ["4090", "rtx 4090"],
    "GB200-NVL72": ["GB200"],
    "V100-16GB": ["V100", "V100M16", "v100-sxm2-16gb"],
    "V100-32GB": ["V100M32", "v100m32"],
    "P100": ["p100"],
    "K80": ["k80"],
    "T4": ["t4"],
    "A10": ["a10"],
    "G2": ["g2"],
    "G3": ["g3"],
    "MISC": ["misc"],
    "MI300X": ["mi300x"],
    "Ascend-910B": ["910B", "ascend910b", "910b3"],
    "Ascend-910C": ["910C", "Ascend910C"],
    "MLU370-X8": ["mlu370-x8"],
    "MLU590": ["mlu590"],
    "K100": ["K100_AI", "k100-ai"],
    "Kunlunxin-P800": ["P800"],
    "MTT-S4000": ["S4000", "mtt s4000"],
    "BI-V150": ["bi-v150", "BIV150"],
    "C500": ["MXC500", "mxc500"],
}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture(autouse=True)
def no_operator_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SUAN_CATALOG", raising=False)


def write(path: Path, entries: list[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump({"accelerators": entries}, sort_keys=False))
    return path


def card(**overrides: Any) -> dict[str, Any]:
    """A complete, valid operator entry for an in-house card."""
    entry: dict[str, Any] = {
        "name": "Acme-Z9",
        "vendor": "acme",
        "memory_gib": 32,
        "memory_bandwidth_gbs": 1000,
        "bf16_tflops": 100,
        "devices_per_node": 8,
        "link_domains": [4, 4],
        "visible_devices_env": "CUDA_VISIBLE_DEVICES",
        "collective_backend": "nccl",
        "sources": {f: "Acme spec sheet" for f in ALWAYS_SOURCED},
    }
    entry.update(overrides)
    return entry


def problems_of(exc: pytest.ExceptionInfo[SpecError]) -> dict[str, str]:
    return {p.path: p.message for p in exc.value.problems}


# --- built-in entries --------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "aliases"), REQUIRED.items())
def test_required_type_is_found_by_name_and_aliases(
    catalog: Catalog, name: str, aliases: list[str]
) -> None:
    assert catalog.canonical(name.lower()) == name
    for alias in aliases:
        assert catalog.canonical(alias) == name, alias


def test_unknown_name_lists_the_known_types(catalog: Catalog) -> None:
    with pytest.raises(UnknownAcceleratorError, match="H100-SXM-80GB"):
        catalog.get("TPUv5")


def test_every_entry_has_a_source_for_every_figure_it_gives(catalog: Catalog) -> None:
    for accel in catalog:
        figures = [
            "memory_gib",
            "memory_bandwidth_gbs",
            "bf16_tflops",
            "devices_per_node",
            "link_domains",
            "link_bandwidth_gbs",
            "relative_speed",
            "visible_devices_env",
            "collective_backend",
        ]
        figures += ["fp8_tflops"] if accel.fp8_tflops is not None else []
        figures += ["supernode_devices"] if accel.supernode_devices else []
        rule = accel.allocation
        figures += (
            ["allocation"] if rule.counts or rule.domain_local_max or rule.module_size > 1 else []
        )
        missing = [f for f in figures if not accel.sources.get(f, "").strip()]
        assert not missing, f"{accel.name}: no source for {missing}"


def test_link_domains_fill_every_node(catalog: Catalog) -> None:
    for accel in catalog:
        assert sum(accel.link_domains) == accel.devices_per_node, accel.name


def test_relative_speed_is_one_for_the_reference_and_derived_elsewhere(catalog: Catalog) -> None:
    assert catalog.get("V100").relative_speed == 1.0
    h100 = catalog.get("H100")
    assert h100.relative_speed == roofline_relative_speed(989, 3350)
    assert h100.sources["relative_speed"].startswith("derived")
    assert catalog.get("H100").relative_speed > catalog.get("A100").relative_speed > 1.0
    # Measured ratios (Gavel) win over the peak-derived estimate for the FP32-era parts.
    assert catalog.get("P100").relative_speed == 0.81
    assert "measured" in catalog.get("K80").sources["relative_speed"]


def test_dual_die_parts_count_visible_devices(catalog: Catalog) -> None:
    ascend = catalog.get("910C")
    assert (ascend.devices_per_node, ascend.memory_gib, ascend.supernode_devices) == (16, 64, 768)
    assert catalog.get("MLU370-X8").devices_per_node == 16
    assert catalog.get("GB200").supernode_devices == 72


def test_software_contract_per_vendor(catalog: Catalog) -> None:
    expected = {
        "H100": ("CUDA_VISIBLE_DEVICES", "nccl", "nccl", "cuda"),
        "MI300X": ("HIP_VISIBLE_DEVICES", "rccl", "nccl", "cuda"),
        "910B": ("ASCEND_RT_VISIBLE_DEVICES", "hccl", "hccl", "npu"),
        "MLU590": ("MLU_VISIBLE_DEVICES", "cncl", "cncl", "mlu"),
        "K100": ("HIP_VISIBLE_DEVICES", "rccl", "nccl", "cuda"),
        "P800": ("XPU_VISIBLE_DEVICES", "bkcl", "bkcl", "xpu"),
        "S4000": ("MUSA_VISIBLE_DEVICES", "mccl", "mccl", "musa"),
        "BI-V150": ("CUDA_VISIBLE_DEVICES", "ixccl", "nccl", "cuda"),
        "C500": ("CUDA_VISIBLE_DEVICES", "mccl", "nccl", "cuda"),
    }
    for name, contract in expected.items():
        accel = catalog.get(name)
        got = (
            accel.visible_devices_env,
            accel.collective_backend,
            accel.dist_backend,
            accel.torch_device,
        )
        assert got == contract, name


# --- allocation rules and link domains ---------------------------------------------------------


def test_ascend_910c_takes_one_die_or_whole_modules(catalog: Catalog) -> None:
    accel = catalog.get("910C")
    allowed = [n for n in range(1, 17) if accel.allocation.allows(n, accel.devices_per_node)]
    assert allowed == [1, 2, 4, 6, 8, 10, 12, 14, 16]
    assert not accel.allocation.allows(3, accel.devices_per_node)
    assert "multiple of 2" in accel.allocation.describe(accel.devices_per_node)


def test_kunlunxin_p800_allows_1_2_4_8_inside_a_group_of_four(catalog: Catalog) -> None:
    accel = catalog.get("P800")
    for count in (1, 2, 4, 8):
        assert accel.allocation.allows(count, 8)
    for count in (3, 5, 6, 7):
        assert not accel.allocation.allows(count, 8)
    assert accel.allocation.domain_local_max == 4
    text = accel.allocation.describe(8)
    assert text == "1, 2, 4, 8; up to 4 must sit in one link domain"


def test_nvidia_has_no_allocation_rule(catalog: Catalog) -> None:
    accel = catalog.get("H100")
    assert all(accel.allocation.allows(n, 8) for n in range(1, 9))
    assert not accel.allocation.allows(9, 8)
    assert accel.allocation.describe(8) == "1 to 8"


@pytest.mark.parametrize("name", ["C500", "P800"])
def test_metax_and_kunlunxin_nodes_are_two_groups_of_four(catalog: Catalog, name: str) -> None:
    accel = catalog.get(name)
    assert accel.domain_layout() == ((0, 1, 2, 3), (4, 5, 6, 7))
    assert accel.allocation.domain_local_max == 4


def test_nvswitch_and_hccs_nodes_are_one_domain(catalog: Catalog) -> None:
    assert catalog.get("H100").domain_layout() == (tuple(range(8)),)
    assert catalog.get("910B").domain_layout() == (tuple(range(8)),)
    assert catalog.get("T4").domain_layout(2) == ((0, 1),)


# --- operator files ----------------------------------------------------------------------------


def test_example_operator_file_adds_and_overrides() -> None:
    catalog = load_catalog([EXAMPLE])
    added = catalog.get("x1")
    assert (added.name, added.vendor, added.domain_layout()[0]) == ("Acme-X1", "acme", (0, 1, 2, 3))
    assert not added.allocation.allows(3, 8)
    rtx = catalog.get("4090")
    assert rtx.memory_gib == 48
    assert "49140 MiB" in rtx.sources["memory_gib"]
    assert rtx.memory_bandwidth_gbs == 1008  # the rest of the built-in entry is kept
    assert "Ada" in rtx.sources["memory_bandwidth_gbs"]
    assert catalog.get("910B").link_domains == (4, 4)
    assert len(catalog) == len(load_catalog()) + 1


def test_override_by_alias_keeps_the_canonical_name_and_adds_aliases(tmp_path: Path) -> None:
    path = write(
        tmp_path / "ops.yaml",
        [
            {
                "name": "h100",
                "aliases": ["hopper"],
                "bf16_tflops": 900,
                "sources": {"bf16_tflops": "our burn-in, 2024"},
            }
        ],
    )
    catalog = load_catalog([path])
    accel = catalog.get("hopper")
    assert (accel.name, accel.bf16_tflops) == ("H100-SXM-80GB", 900)
    assert catalog.get("H100-SXM5") is accel
    assert accel.relative_speed == roofline_relative_speed(900, 3350)  # re-derived


def test_operator_file_named_by_environment(tmp_path: Path, monkeypatch) -> None:
    path = write(tmp_path / "env.yaml", [card()])
    monkeypatch.setenv("SUAN_CATALOG", str(path))
    assert load_catalog().get("acme-z9").relative_speed == roofline_relative_speed(100, 1000)


def test_override_of_a_figure_needs_its_own_source(tmp_path: Path) -> None:
    path = write(tmp_path / "ops.yaml", [{"name": "H100", "memory_gib": 94}])
    with pytest.raises(SpecError) as exc:
        load_catalog([path])
    assert exc.value.source == str(path)
    assert "memory_gib" in problems_of(exc)["accelerators.0.sources"]


@pytest.mark.parametrize(
    ("entry", "field", "words"),
    [
        (card(sources={"memory_gib": "sheet"}), "sources", "bf16_tflops"),
        (card(fp8_tflops=200), "sources", "fp8_tflops"),
        (card(link_domains=[4, 2]), "link_domains", "add up to 6"),
        (card(allocation={"counts": [1, 9]}), "allocation.counts.1", "exceeds"),
        (card(allocation={"counts": [0]}), "allocation.counts.0", "out of range"),
        (card(allocation={"domain_local_max": 8}), "allocation.domain_local_max", "largest"),
        (card(allocation={"module_size": 3}), "allocation.module_size", "divide"),
        (card(supernode_devices=12), "supernode_devices", "whole number"),
        (card(memory_gib=-1), "memory_gib", "-1 is out of range"),
        (card(colour="red"), "colour", "unknown field 'colour'"),
        (card(sources={**card()["sources"], "memory_gb": "x"}), "sources.memory_gb", "not a field"),
        ({"name": "Acme-Z9"}, "memory_gib", "required field is missing"),
        ("H100", "", "mapping"),
    ],
)
def test_bad_operator_entry_names_the_field_path(
    tmp_path: Path, entry: Any, field: str, words: str
) -> None:
    file = write(tmp_path / "bad.yaml", [card(name="Fine-Card"), entry])
    with pytest.raises(SpecError) as exc:
        load_catalog([file])
    path = f"accelerators.1.{field}" if field else "accelerators.1"
    found = problems_of(exc)
    assert path in found, found
    assert words in found[path]
    assert not load_catalog().find("Fine-Card")  # nothing of a bad file is kept


def test_an_alias_that_names_another_type_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "ops.yaml", [card(aliases=["H100"])])
    with pytest.raises(SpecError, match="already names 'H100-SXM-80GB'"):
        load_catalog([path])


def test_a_type_listed_twice_in_one_file_is_refused() -> None:
    with pytest.raises(SpecError) as exc:
        parse_catalog_document({"accelerators": [card(), card(name="acme z9")]}, "x.yaml")
    assert "repeats accelerators.0" in problems_of(exc)["accelerators.1.name"]


@pytest.mark.parametrize("document", [None, {"accelerators": {}}, {"types": []}])
def test_a_file_without_an_accelerators_list_is_refused(document: Any) -> None:
    with pytest.raises(SpecError) as exc:
        parse_catalog_document(document, "x.yaml")
    assert exc.value.problems


def test_missing_operator_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="file not found"):
        load_catalog([tmp_path / "nope.yaml"])


# --- the command -------------------------------------------------------------------------------


def test_cli_json_lists_every_type_with_every_field() -> None:
    result = CliRunner().invoke(cli, ["catalog", "--json"])
    assert result.exit_code == 0, result.output
    records = {record["name"]: record for record in json.loads(result.output)}
    assert set(REQUIRED) <= set(records)
    p800 = records["Kunlunxin-P800"]
    assert p800["link_domains"] == [4, 4]
    assert p800["allocation"] == {"counts": [1, 2, 4, 8], "domain_local_max": 4, "module_size": 1}
    assert p800["visible_devices_env"] == "XPU_VISIBLE_DEVICES"
    assert p800["sources"]["memory_gib"]


def test_cli_filters_by_vendor_and_reads_operator_files() -> None:
    result = CliRunner().invoke(
        cli, ["catalog", "--json", "--vendor", "ACME", "--file", str(EXAMPLE)]
    )
    assert result.exit_code == 0, result.output
    assert [r["name"] for r in json.loads(result.output)] == ["Acme-X1"]


def test_cli_table_and_show() -> None:
    runner = CliRunner()
    listing = runner.invoke(cli, ["catalog"], env={"COLUMNS": "250"})
    assert listing.exit_code == 0, listing.output
    assert "Ascend-910C" in listing.output and "ASCEND_RT_VISIBLE_DEVICES" in listing.output
    shown = runner.invoke(cli, ["catalog", "show", "p800"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert "Kunlunxin-P800" in shown.output and "Sources" in shown.output
    assert "HAMi Kunlunxin topology" in shown.output


def test_cli_show_json_and_unknown_name() -> None:
    result = CliRunner().invoke(cli, ["catalog", "show", "910c", "--json"])
    assert json.loads(result.output)["allocation"]["module_size"] == 2
    unknown = CliRunner().invoke(cli, ["catalog", "show", "TPUv5"])
    assert isinstance(unknown.exception, UnknownAcceleratorError)


def test_cli_group_options_reach_show() -> None:
    result = CliRunner().invoke(cli, ["catalog", "--json", "--file", str(EXAMPLE), "show", "x1"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["name"] == "Acme-X1"


def test_docs_table_matches_the_catalog(catalog: Catalog) -> None:
    rows = {}
    for line in DOCS.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 12 and cells[0] in catalog.names():
            rows[cells[0]] = cells
    assert set(rows) == set(catalog.names())
    for accel in catalog:
        cells = rows[accel.name]
        figures = [accel.memory_gib, accel.memory_bandwidth_gbs, accel.bf16_tflops]
        assert cells[3:6] == [f"{value:g}" for value in figures], accel.name
        assert cells[7] == str(accel.devices_per_node), accel.name
        assert cells[8].startswith("+".join(map(str, accel.link_domains)) + ","), accel.name
        assert cells[10] == accel.allocation.describe(accel.devices_per_node), accel.name
        assert cells[11] == f"{accel.relative_speed:g}", accel.name
