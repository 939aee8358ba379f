"""`suan sim`: replay traces through the scheduler, run packing experiments, reproduce
published results. See docs/simulator.md."""

from __future__ import annotations

from pathlib import Path

import typer

from suan.cli.files import text_file, text_file_or_name
from suan.cli.listing import output_console
from suan.errors import FieldProblem, SpecError

sim = typer.Typer(help="Discrete-event simulation of the scheduler on real cluster traces.",
                  no_args_is_help=True)


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _seeds(text: str) -> list[int]:
    """`42-51` or `1,2,5`."""
    try:
        if "-" in text and "," not in text:
            low, high = (int(p) for p in text.split("-", 1))
            return list(range(low, high + 1))
        return [int(p) for p in _split(text)]
    except ValueError:
        raise SpecError("--seeds", [FieldProblem("seeds", f"cannot read {text!r}",
                                                 "a range such as 42-51, or 1,2,3")]) from None


@sim.command("replay")
def replay_command(
    trace: Path = typer.Option(..., "--trace", help="Job trace file.", callback=text_file,
                               readable=False),
    fmt: str = typer.Option("csv", "--format", help="philly, csv, tiresias or gavel."),
    cluster: str = typer.Option(..., "--cluster", help="Cluster spec YAML, an openb node "
                                "list CSV, or a shorthand such as 250x8xV100.",
                                callback=text_file_or_name),
    policy: str = typer.Option("fifo,las,default", "--policy",
                               help="Comma-separated policies (see `suan policies`; also "
                               "las-preemptive, srtf-preemptive)."),
    json_path: Path | None = typer.Option(None, "--json", help="Write every figure here."),
    plots: Path | None = typer.Option(None, "--plots", help="Write PNG plots to this folder."),
    jobs_csv: Path | None = typer.Option(None, "--jobs-csv", help="Write a per-job CSV."),
    tick: float = typer.Option(300.0, "--tick", help="Scheduler tick in seconds (0: none)."),
    checkpoint: float = typer.Option(0.0, "--checkpoint-interval", help="Seconds between "
                                     "checkpoints (0: stopping loses nothing; -1: never)."),
    overhead: float = typer.Option(0.0, "--restart-overhead", help="Seconds a restarted job "
                                   "spends before it makes progress."),
    slowdown: str = typer.Option("", "--slowdown", help="Run-time multipliers for spread "
                                 "gangs, e.g. domain=1.05,node=1.2,rack=1.4."),
    node_mtbf_days: float = typer.Option(0.0, "--node-mtbf-days", help="Node MTBF in days "
                                         "(0: no failures; 200 is a published rate)."),
    repair_hours: float = typer.Option(4.0, "--repair-hours", help="Repair time of a node."),
    seed: int = typer.Option(0, "--seed", help="Seed of the failure model."),
    vcs: str = typer.Option("", "--vcs", help="Philly: only these virtual clusters."),
    limit: int = typer.Option(0, "--limit", help="Only the first N jobs (0: all)."),
    oracle_estimates: bool = typer.Option(False, "--oracle-estimates", help="Give backfill "
                                          "the true durations as runtime estimates."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip and count bad rows."),
    queue_depth: int = typer.Option(0, "--queue-depth", help="Pass only the first N waiting "
                                    "jobs, in the policy's order, to each cycle (0: all)."),
) -> None:
    """Replay a trace under one or more policies and compare them side by side."""
    from suan.sim.replay import ReplayOptions, replay

    options = ReplayOptions(
        trace=trace, fmt=fmt, cluster=cluster, policies=_split(policy), tick=tick,
        checkpoint=checkpoint, overhead=overhead, slowdown=slowdown,
        node_mtbf_days=node_mtbf_days, repair_hours=repair_hours, seed=seed,
        vcs=set(_split(vcs)), limit=limit, oracle_estimates=oracle_estimates,
        skip_bad=skip_bad, queue_depth=queue_depth,
    )
    replay(options, output_console(), json_path=json_path, plots=plots, jobs_csv=jobs_csv)


@sim.command("pack")
def pack_command(
    nodes: Path = typer.Option(..., "--nodes", help="openb node list CSV.", callback=text_file,
                               readable=False),
    pods: Path = typer.Option(..., "--pods", help="openb pod list CSV (all columns or 5).",
                              callback=text_file, readable=False),
    placement: str = typer.Option("random,bestfit,fgd", "--placement",
                                  help="Comma-separated placements."),
    seeds: str = typer.Option("42-51", "--seeds", help="Shuffle seeds, e.g. 42-51."),
    inflate: float = typer.Option(1.3, "--inflate", help="Clone pods up to this multiple."),
    json_path: Path | None = typer.Option(None, "--json", help="Write every figure here."),
    plots: Path | None = typer.Option(None, "--plots", help="Write the PNG plot here."),
) -> None:
    """FGD-style packing: place shuffled pods one by one, report unallocated GPU %."""
    from suan.sim.pack import pack_report

    pack_report(nodes, pods, _split(placement), _seeds(seeds), inflate, output_console(),
                json_path=json_path, plots=plots)


@sim.command("reproduce")
def reproduce_command(
    name: str = typer.Argument(..., help="helios-philly, philly-contended, fgd-openb or "
                               "peers."),
    json_path: Path | None = typer.Option(None, "--json", help="Write every figure here."),
    quick: bool = typer.Option(False, "--quick", help="A smaller run (fewer VCs or seeds)."),
) -> None:
    """Run a published setup and print our numbers beside the published ones."""
    from suan.sim.reproduce import reproduce

    reproduce(name, output_console(), json_path=json_path, quick=quick)


@sim.command("failures")
def failures_command(
    json_path: Path | None = typer.Option(None, "--json", help="Write every figure here."),
    spares: int | None = typer.Option(None, "--spares", help="Hot spare nodes under Suan's "
                                      "rules (default: derived from the fault rate)."),
    restart: str = typer.Option("5m", "--restart-overhead", help="Restart overhead per "
                                "interruption, e.g. 5m."),
    days: float = typer.Option(54.0, "--days", help="Length of the run in days."),
    gpus: int = typer.Option(16384, "--gpus", help="H100 GPUs of the job (8 per node)."),
    storage: str = typer.Option("2TB/s", "--storage-bandwidth", help="Checkpoint write "
                                "bandwidth, e.g. 2TB/s."),
    async_checkpoint: bool = typer.Option(False, "--async-checkpoint", help="Save "
                                          "asynchronously (a shorter blocking part)."),
    repair: str = typer.Option("4h", "--repair-time", help="Time to repair a failed node."),
    seed: int = typer.Option(0, "--seed", help="First seed of the failure process."),
    repeats: int = typer.Option(20, "--repeats", help="Seeds to run (seed, seed+1, ...)."),
    plot: Path | None = typer.Option(None, "--plot", help="Write a PNG of ETTR against the "
                                     "restart overhead."),
) -> None:
    """Effective training time of a Llama-3-405B-like job under Llama 3's failure mix."""
    from suan.sim.ettr_inputs import scenario_from_options
    from suan.sim.ettr_report import failures_report

    scenario = scenario_from_options(
        gpus=gpus, days=days, restart=restart, storage=storage,
        async_checkpoint=async_checkpoint, repair=repair, spares=spares, seed=seed,
        repeats=repeats)
    failures_report(scenario, output_console(), json_path=json_path, plot_path=plot)


def register(app: typer.Typer) -> None:
    """Add the `sim` command group to `app`."""
    app.add_typer(sim, name="sim")
