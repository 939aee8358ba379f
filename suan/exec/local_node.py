"""The local machine as one scheduler `Node`: real accelerators when it has them, otherwise
simulated device slots (`8xH100`) backed by CPU processes.

With no `--devices`, nvidia-smi's GPUs are looked for first (`detect_gpus`); when it finds
none, every vendor tool on PATH is asked (suan.devices.discover).

    node, simulated = local_node("8xH100")    # 8 simulated H100 slots
    node, simulated = local_node(None)        # the devices found, else 8 simulated H100 slots
    node, simulated = local_node("none")      # a CPU-only node
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess

from suan.catalog import Catalog, default_catalog
from suan.cluster.model import Node
from suan.devices.discover import detect_devices
from suan.errors import FieldProblem, SpecError

DEFAULT_SIMULATED = "8xH100"
_DEVICES = re.compile(r"^\s*(?:(\d+)\s*[xX]\s*)?([A-Za-z0-9][A-Za-z0-9._-]*)\s*$")


def parse_devices(text: str, catalog: Catalog | None = None) -> tuple[str | None, int]:
    """(canonical accelerator type, count) for `COUNTxTYPE` or `TYPE`; (None, 0) for `none`.

    Raises SpecError naming the `--devices` option for anything else.
    """
    catalog = catalog or default_catalog()
    if text.strip().lower() in ("none", "cpu", "0"):
        return None, 0
    match = _DEVICES.match(text)
    accel = catalog.find(match.group(2)) if match else None
    if match is None or accel is None:
        allowed = "COUNTxTYPE such as 8xH100 or 4x910B, a type alone, or none; types: " + ", ".join(
            sorted(catalog.names())
        )
        raise SpecError("--devices", [FieldProblem("devices", f"cannot read {text!r}", allowed)])
    count = int(match.group(1)) if match.group(1) else accel.devices_per_node
    if not 1 <= count <= 1024:
        raise SpecError("--devices", [FieldProblem("devices", f"{count} devices", "1 to 1024")])
    return accel.name, count


def detect_gpus(catalog: Catalog | None = None) -> tuple[str, int] | None:
    """(catalog type, count) of this machine's NVIDIA GPUs via nvidia-smi, or None."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    names = [line.strip() for line in out.splitlines() if line.strip()]
    accel = match_gpu_name(names[0], catalog) if names else None
    return (accel, len(names)) if accel else None


def match_gpu_name(name: str, catalog: Catalog | None = None) -> str | None:
    """The catalog type whose name or alias appears in a marketing name ("NVIDIA H100 80GB")."""
    catalog = catalog or default_catalog()
    text = re.sub(r"[^a-z0-9]", "", name.lower())
    best: tuple[int, str] | None = None
    for accel in catalog:
        for label in (accel.name, *accel.aliases):
            key = re.sub(r"[^a-z0-9]", "", label.lower())
            if key and key in text and (best is None or len(key) > best[0]):
                best = (len(key), accel.name)
    return best[1] if best else None


def _discovered(catalog: Catalog) -> tuple[str, int] | None:
    """(catalog type, count) from the vendor tools on PATH, or None."""
    found = detect_devices(catalog)
    return (found.accelerator, found.count) if found and found.accelerator else None


def _memory_mib() -> int:
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 0


def local_node(devices: str | None, catalog: Catalog | None = None) -> tuple[Node, bool]:
    """This machine as a Node, and whether its devices are simulated (see the module doc)."""
    catalog = catalog or default_catalog()
    found = (detect_gpus(catalog) or _discovered(catalog)) if devices is None else None
    simulated = found is None
    accel, count = found if found else parse_devices(devices or DEFAULT_SIMULATED, catalog)
    domains = catalog.get(accel).domain_layout(count) if accel else ()
    node = Node(
        name=socket.gethostname() or "local",
        accelerator=accel,
        devices=count,
        domains=domains,
        cpu_milli=(os.cpu_count() or 1) * 1000,
        memory_mib=_memory_mib(),
        labels={"simulated": str(simulated).lower()},
    )
    return node, simulated
