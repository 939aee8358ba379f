"""Leave-one-list-out cross-validation of the constants of the `pack-lookahead` placer.

The nine openb pod lists with published FGD figures (`fgd_atc23_published/`) are packed as the
FGD paper does (`suan.sim.pack.run_pack`: shuffle, inflate to 1.3x, place one by one) with
every candidate set of constants in `CANDIDATES`, on `--seeds`. For each list held out, the
candidate with the lowest mean gap to FGD's published figure (unallocated GPU % at 100 %
arrived) over the *other* eight lists is chosen, and its figure on the held-out list is
reported beside FGD's published one and Suan's own FGD (`pack-fgd`). The candidate chosen on
all nine lists is then run on the pod lists that have no published figure (the second
hold-out), beside Suan's FGD. `chosen_on_all` must equal the constants `pack-lookahead` is
registered with (`registered_matches`).

Every (list, placer, seed) figure is cached in `--cache` (a JSON file keyed also by a hash of
the placers' source), so a second run only computes what changed. Progress goes to stderr;
stdout gets one JSON object.

    nice python bench/pack_cv.py [--seeds 42,43] [--jobs 2] [--cache .pack_cv_cache.json]
"""

from __future__ import annotations

import argparse
import ast
import csv
import hashlib
import json
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from suan.sched.lookahead import Constants  # noqa: E402
from suan.sched.packers import CHOSEN  # noqa: E402

FOLDER_NAME = Path("traces") / "alibaba_pai_openb_v2023"
CANDIDATES: tuple[Constants, ...] = (
    Constants(scale=None, strand=2.0),
    *(Constants(scale=scale, strand=strand) for scale in (1000.0, 4000.0)
      for strand in (1.0, 2.0)),
    Constants(typed=0.0), Constants(coverage=0.9),
)
"""What the cross-validation chooses among: the tie width (sigmoid scale: fixed, or derived
from the workload's smallest typical GPU share, `share_scale`) and the stranding weight
together, and the typed-shortage weight and the coverage one at a time, each around the unit
weights (both terms are in milli GPU, the unit of the fragmentation drop) and the FGD paper's
scale and coverage. On equal means the earlier candidate wins."""
UNPUBLISHED = ("cpu0", "cpu037", "cpu072", "cpu235", "cpu300", "gpushare20", "gpuspec05")
SOURCES = ("suan/sched/packing.py", "suan/sched/lookahead.py", "suan/sim/pack.py",
           "suan/sim/pods.py")


def shared_folder() -> Path:
    from suan.sim.reproduce import SHARED

    return SHARED / FOLDER_NAME


def pod_list(folder: Path, name: str) -> Path:
    """The pod list of a workload name (`default`, `cpu050`, ...)."""
    if name == "default":
        return folder / "openb_pod_list_default.csv"
    return folder / "variants" / f"openb_pod_list_{name}.csv.gz"


def published(folder: Path) -> dict[str, float]:
    """FGD's published unallocated GPU % at 100 % arrived, by workload name."""
    path = folder / "fgd_atc23_published" / "summary_at_arrived_100pct.csv"
    with path.open(newline="") as handle:
        return {row["workload"].removeprefix("openb_pod_list_"):
                float(row["unalloc_gpu_pct_at_arrived100_mean"])
                for row in csv.DictReader(handle) if row["policy"] == "FGD"}


def run_one(task: tuple[str, str, str, int]) -> tuple[str, str, int, float, float]:
    """(list, placer key, seed, unallocated % at 100 % arrived, CPU seconds) of one run;
    the placer key is `fgd` or a candidate's key."""
    os.nice(5)
    from suan.cluster.traces import read_openb_nodes
    from suan.sched.lookahead import Lookahead
    from suan.sched.packing import packer_class
    from suan.sched.placement import PLACERS
    from suan.sim.pack import run_pack
    from suan.sim.pods import read_openb_pods

    folder, name, key, seed = task
    started = time.process_time()
    nodes = read_openb_nodes(Path(folder) / "openb_node_list_gpu_node.csv")
    pods, _ = read_openb_pods(pod_list(Path(folder), name))
    strategy = "fgd"
    if key != "fgd":
        constants = candidate(key)
        PLACERS["pack-cv"] = packer_class("pack-cv", Lookahead(**constants.score_args()),
                                          "cv", constants.coverage)
        strategy = "cv"
    run = run_pack(nodes, pods, strategy, seed, until_pct=100)
    return name, key, seed, run.unallocated_at_100, time.process_time() - started


def source_hash() -> str:
    """A hash of the code of `SOURCES` without docstrings and comments (what a run computes
    depends on the code alone)."""
    digest = hashlib.sha256()
    for path in SOURCES:
        tree = ast.parse((ROOT / path).read_text())
        for node in ast.walk(tree):
            body = getattr(node, "body", None)
            if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                    and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]  # type: ignore[attr-defined]
        digest.update(ast.dump(tree).encode())
    return digest.hexdigest()[:16]


class Cache:
    """Figures by (list, placer key, seed), valid for one source hash."""

    def __init__(self, path: Path):
        self.path = path
        self.version = source_hash()
        stored: dict[str, Any] = {}
        if path.is_file():
            stored = json.loads(path.read_text())
        self.values: dict[str, float] = (stored.get("values", {})
                                         if stored.get("version") == self.version else {})

    def get(self, name: str, key: str, seed: int) -> float | None:
        return self.values.get(f"{name}|{key}|{seed}")

    def put(self, name: str, key: str, seed: int, value: float) -> None:
        self.values[f"{name}|{key}|{seed}"] = value
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps({"version": self.version, "values": self.values}))


def compute(cache: Cache, folder: Path, tasks: list[tuple[str, str, int]], jobs: int) -> None:
    """Run the tasks the cache lacks, in `jobs` processes, reporting progress on stderr."""
    missing = [t for t in tasks if cache.get(*t) is None]
    say(f"{len(tasks) - len(missing)} of {len(tasks)} runs cached; {len(missing)} to run")
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(run_one, (str(folder), *task)) for task in missing]
        for done, future in enumerate(as_completed(futures), start=1):
            name, key, seed, value, cpu_s = future.result()
            cache.put(name, key, seed, value)
            say(f"[{done}/{len(missing)}] {name} {key} seed {seed}: {value:.3f} % "
                f"({cpu_s:.0f} s CPU)")


def mean(cache: Cache, name: str, key: str, seeds: list[int]) -> float:
    values = [cache.get(name, key, seed) for seed in seeds]
    return statistics.fmean(v for v in values if v is not None)


def choose(cache: Cache, lists: list[str], seeds: list[int], fgd: dict[str, float]) -> str:
    """The candidate with the lowest mean gap to FGD's published figure over `lists`
    (ties: the earlier candidate)."""
    keys = [c.key for c in CANDIDATES]
    return min(keys, key=lambda k: statistics.fmean(
        mean(cache, name, k, seeds) - fgd[name] for name in lists))


def candidate(key: str) -> Constants:
    """The candidate with this key."""
    for constants in CANDIDATES:
        if constants.key == key:
            return constants
    raise ValueError(f"no candidate {key!r}")


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="42")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--cache", type=Path,
                        default=Path.home() / ".cache" / "suan" / "pack_cv.json")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    folder = shared_folder()
    fgd = published(folder)
    lists = sorted(fgd, key=lambda n: (n != "default", n))
    cache = Cache(args.cache)
    started = time.perf_counter()
    grid = [(n, c.key, s) for n in lists for c in CANDIDATES for s in seeds]
    compute(cache, folder, grid + [(n, "fgd", s) for n in lists for s in seeds], args.jobs)
    folds = []
    for held in lists:
        key = choose(cache, [n for n in lists if n != held], seeds, fgd)
        ours = mean(cache, held, key, seeds)
        folds.append({"list": held, "chosen": candidate(key).as_dict(),
                      "held_out_unallocated_pct": round(ours, 3),
                      "fgd_published_pct": fgd[held],
                      "suan_fgd_pct": round(mean(cache, held, "fgd", seeds), 3),
                      "below_published_fgd": ours < fgd[held]})
    final = choose(cache, lists, seeds, fgd)
    compute(cache, folder, [(n, k, s) for n in UNPUBLISHED for k in (final, "fgd")
                            for s in seeds], args.jobs)
    second = [{"list": n, "unallocated_pct": round(mean(cache, n, final, seeds), 3),
               "suan_fgd_pct": round(mean(cache, n, "fgd", seeds), 3),
               "below_suan_fgd": mean(cache, n, final, seeds) < mean(cache, n, "fgd", seeds)}
              for n in UNPUBLISHED]
    print(json.dumps({
        "seeds": seeds,
        "candidates": [c.as_dict() for c in CANDIDATES],
        "folds": folds,
        "folds_below_published_fgd": sum(f["below_published_fgd"] for f in folds),
        "chosen_on_all": candidate(final).as_dict(),
        "registered_matches": final == CHOSEN.key,
        "unpublished": second,
        "unpublished_below_suan_fgd": sum(s["below_suan_fgd"] for s in second),
        "wall_s": round(time.perf_counter() - started, 1),
    }, indent=1))


if __name__ == "__main__":
    main()
