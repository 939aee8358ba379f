"""Alibaba PAI openb pod lists (cluster-trace-gpu-v2023): every column, or the 5-column form
`name,cpu_milli,memory_mib,num_gpu,gpu_milli`. `gpu_spec` (when present) lists acceptable GPU
models separated by `|`; empty means any."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from suan.sim.traces import BadRow, Trace, _Collector, _dict_rows, _number, open_text

POD_COLUMNS = ("name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli")


@dataclass(frozen=True)
class Pod:
    """One task: CPU (milli), memory (MiB), GPUs and the share of each, acceptable models."""

    name: str
    cpu_milli: int
    memory_mib: int
    num_gpu: int
    gpu_milli: int
    gpu_spec: tuple[str, ...] = ()

    @property
    def gpus(self) -> float:
        """GPU demand in whole-GPU units (a 0.5 share of one GPU is 0.5)."""
        return self.num_gpu * self.gpu_milli / 1000


def read_openb_pods(path: str | Path, *, skip_bad: bool = False) -> tuple[list[Pod], Trace]:
    """The pods of an openb pod list in file order, and the read summary."""
    source = Path(path)
    collector = _Collector(str(source), skip_bad)
    pods: list[Pod] = []
    with open_text(source) as handle:
        for line, cells in _dict_rows(handle, str(source), POD_COLUMNS):
            try:
                pods.append(_pod(cells))
            except BadRow as exc:
                collector.bad(line, str(exc))
    collector.finish()
    return pods, Trace([], str(source), collector.skipped, collector.notes)


def _pod(cells: dict[str, str]) -> Pod:
    name = (cells.get("name") or "").strip()
    if not name:
        raise BadRow("column name: empty")
    gpus = int(_number(cells, "num_gpu", whole=True))
    milli = int(_number(cells, "gpu_milli", whole=True))
    if milli > 1000 or (gpus and not milli):
        raise BadRow(f"column gpu_milli: {milli} (must be 1..1000 when num_gpu > 0)")
    spec = tuple(p.strip() for p in (cells.get("gpu_spec") or "").split("|") if p.strip())
    return Pod(name, int(_number(cells, "cpu_milli", whole=True)),
               int(_number(cells, "memory_mib", whole=True)), gpus, milli if gpus else 0, spec)
