"""`suan hold`, `suan release` and `suan requeue`, after Slurm's scontrol hold/release/requeue
(`suan.control.holds` says what each does)."""

from __future__ import annotations

import typer

from suan.client import Client

JobIds = typer.Argument(..., help="Job ids.")


def hold_command(job_ids: list[str] = JobIds) -> None:
    """Keep waiting jobs from the scheduler until they are released."""
    with Client() as client:
        for job_id in job_ids:
            answer = client.hold(job_id)
            typer.echo(f"{job_id} held by {answer['held_by']}")


def release_command(job_ids: list[str] = JobIds) -> None:
    """Let held jobs be scheduled again."""
    with Client() as client:
        for job_id in job_ids:
            client.release(job_id)
            typer.echo(f"{job_id} released")


def requeue_command(job_ids: list[str] = JobIds) -> None:
    """Stop running jobs and put them back in the queue (they restart from their checkpoint;
    no restart is counted against maxRestarts)."""
    with Client() as client:
        for job_id in job_ids:
            client.requeue(job_id)
            typer.echo(f"{job_id} requeueing")


def register(app: typer.Typer) -> None:
    app.command("hold")(hold_command)
    app.command("release")(release_command)
    app.command("requeue")(requeue_command)
