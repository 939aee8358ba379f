"""The researcher's commands against a running server, after sbatch/squeue/scancel and
kubectl: `suan submit`, `suan jobs`, `suan describe`, `suan logs`, `suan cancel`,
`suan queues`, and `suan users add` (`suan tokens` is in tokens_cmd, `suan nodes` in
nodes_cmd). SUAN_SERVER and SUAN_TOKEN pick the server and identity."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

JSON_HELP = "Print as JSON."


def Client():
    """The SDK client for SUAN_SERVER / SUAN_TOKEN (httpx is imported only when needed)."""
    from suan.client import Client as SdkClient

    return SdkClient()


def _age(since: float | None) -> str:
    if not since:
        return "-"
    seconds = int(time.time() - since)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2))


def submit_command(
    file: Path = typer.Argument(..., help="Job (and Queue) YAML, see docs/job-spec.md."),
    workdir: str | None = typer.Option(
        None, "--workdir", help="Where ranks start (default: the current directory)."
    ),
    idempotency_key: str | None = typer.Option(
        None,
        "--idempotency-key",
        help="Submit at most once with this key (1-255 visible ASCII characters): the same "
        "command again within 24 hours prints the same job ids. Default: a new random key, "
        "reused only for the client's own retries.",
    ),
) -> None:
    """Submit the jobs of a spec file; print each new job id."""
    with Client() as client:
        result = client.submit_raw(
            file.read_text(), workdir or str(Path.cwd()), idempotency_key=idempotency_key
        )
    for queue in result["queues"]:
        typer.echo(f"queue/{queue} configured", err=True)
    for job in result["jobs"]:
        typer.echo(job["id"])


def jobs_command(
    all_jobs: bool = typer.Option(False, "--all", "-a", help="Include finished jobs."),
    limit: int = typer.Option(
        100, "--limit", "-n", min=1, max=10_000, help="Jobs per page (at most 10,000)."
    ),
    page: str | None = typer.Option(
        None, "--page", help="Show the page that starts at this token (printed under a page)."
    ),
    all_pages: bool = typer.Option(False, "--all-pages", help="Show every page."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """List jobs (yours, your queues', or all for an admin), newest first, a page at a time;
    under a cut list it says how many more there are and how to see them."""
    with Client() as client:
        if all_pages:
            jobs, more = list(client.iter_jobs(all_jobs, max(limit, 1000))), None
        else:
            answer = client.jobs_page(all_jobs, limit, page)
            jobs, more = answer["jobs"], answer
    note = _more_note(more, all_jobs, limit) if more and more.get("next") else ""
    if as_json:
        _print_json(jobs)
        if note:
            typer.echo(note, err=True)
        return
    table = Table(box=None, header_style="bold")
    for column in ("ID", "USER", "QUEUE", "STATE", "RANKS", "AGE", "RESTARTS", "REASON"):
        table.add_column(column, overflow="fold")
    for job in jobs:
        reason = "" if job["state"] in ("running", "succeeded") else job["reason"]
        table.add_row(
            job["id"],
            job["user"],
            job["queue"],
            job["state"],
            str(job["ranks"]),
            _age(job["submit_time"]),
            str(job["restarts"]),
            reason,
        )
    Console().print(table)
    if note:
        typer.echo(note)


def _more_note(answer: dict[str, Any], all_jobs: bool, limit: int) -> str:
    """The line under a cut list: how many more jobs, and the flags that show them."""
    flags = " --all" if all_jobs else ""
    flags += f" --limit {limit}" if limit != 100 else ""
    return (
        f"{answer['remaining']} more: `suan jobs{flags} --page {answer['next']}` for the next "
        f"page, --all-pages for every one"
    )


def describe_command(
    job_id: str = typer.Argument(..., help="Job id (from `suan submit` or `suan jobs`)."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Show a job: spec, state, placement, ranks, events, and why it waits."""
    with Client() as client:
        job = client.describe(job_id)
    if as_json:
        _print_json(job)
        return
    out = Console()
    out.print(
        f"[bold]{job['id']}[/]  {job['state']}  user {job['user']}  queue {job['queue']}"
        f"  priority {job['priority']}  attempt {job['attempt']}  "
        f"restarts {job['restarts']}"
    )
    if job["reason"]:
        label = (
            "why it waits" if job["state"] in ("pending", "preempted", "restarting") else "reason"
        )
        out.print(f"[bold]{label}:[/] {job['reason']}", highlight=False)
    if job["placement"]:
        out.print(f"[bold]placement:[/] {job['placement']['why']}", highlight=False)
    for rank in job["ranks_detail"]:
        code = "" if rank["exit_code"] is None else f" exit {rank['exit_code']}"
        where = f"engine id {rank['engine_id']}" if rank.get("engine_id") else f"pid {rank['pid']}"
        out.print(
            f"  rank {rank['rank']}: {rank['node']} devices [{rank['devices']}] {where}{code}",
            highlight=False,
        )
    out.print(f"[bold]checkpoints:[/] {job['checkpoint_dir']}", highlight=False)
    from suan.cli.goodput_cmd import describe_lines

    for line in describe_lines(job):
        out.print(line, highlight=False)
    out.print("[bold]events:[/]")
    for event in job["events"]:
        stamp = time.strftime("%H:%M:%S", time.localtime(event["time"]))
        out.print(f"  {stamp} {event['kind']:<17} {event['message']}", highlight=False)
    out.print("[bold]spec:[/]")
    out.print(json.dumps(job["spec"], indent=2), highlight=False)


def logs_command(
    job_id: str = typer.Argument(..., help="Job id."),
    rank: int = typer.Option(0, "--rank", "-r", help="Which rank's log."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing until the job ends."),
) -> None:
    """Print a rank's log (stdout and stderr, every attempt)."""
    with Client() as client:
        if follow:
            for chunk in client.follow_logs(job_id, rank):
                sys.stdout.write(chunk)
                sys.stdout.flush()
            return
        offset = 0
        while True:
            chunk = client.logs(job_id, rank, offset)
            sys.stdout.write(chunk["data"])
            if not chunk["data"]:
                return
            offset = chunk["next_offset"]


def cancel_command(job_ids: list[str] = typer.Argument(..., help="Job ids.")) -> None:
    """Cancel jobs: SIGTERM to every rank's process group, SIGKILL after the grace period."""
    with Client() as client:
        for job_id in job_ids:
            client.cancel(job_id)
            typer.echo(f"{job_id} cancelling")


def queues_command(as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """List queues with their quotas, devices in use, running and waiting jobs."""
    with Client() as client:
        queues = client.queues()
    if as_json:
        _print_json(queues)
        return
    table = Table(box=None, header_style="bold")
    for column in (
        "QUEUE",
        "PARENT",
        "GUARANTEED",
        "BORROW LIMIT",
        "USED",
        "RUNNING",
        "WAITING",
        "ADMINS",
        "SUBMITTERS",
    ):
        table.add_column(column)
    for queue in queues:
        table.add_row(
            queue["name"],
            queue["parent"] or "",
            _amounts(queue["guaranteed"]),
            _amounts(queue["borrow_limit"]),
            _amounts(queue["used"]),
            str(queue["running"]),
            str(queue["waiting"]),
            ", ".join(queue["admins"]),
            "*" if queue.get("open", True) else ", ".join(queue["submitters"] or []),
        )
    Console().print(table)


def _amounts(amounts: dict[str, float] | None) -> str:
    if amounts is None:
        return "-"
    return ", ".join(f"{key}={value:g}" for key, value in amounts.items()) or "-"


users = typer.Typer(help="Users and their API tokens (cluster admins only).", no_args_is_help=True)


@users.command("add")
def users_add(
    name: str = typer.Argument(..., help="User name (lowercase letters, digits, '-')."),
    admin: bool = typer.Option(False, "--admin", help="Make a cluster admin."),
    rotate: bool = typer.Option(
        False, "--rotate", help="For an existing user: revoke its tokens and issue a new one."
    ),
) -> None:
    """Create a user and print a new API token for them (shown only once)."""
    with Client() as client:
        token = client.create_user(name, admin, rotate)
    typer.echo(token)


@users.command("whoami")
def users_whoami() -> None:
    """Print who the current token belongs to."""
    with Client() as client:
        me = client.whoami()
    typer.echo(f"{me['user']}{' (admin)' if me['admin'] else ''}")


def audit_command(
    limit: int = typer.Option(100, "--limit", help="How many calls, newest first."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """The audit log: every mutating API call, who made it and its status (admins only)."""
    with Client() as client:
        calls = client.audit(limit)
    if as_json:
        _print_json(calls)
        return
    table = Table(box=None, header_style="bold")
    for column in ("TIME", "USER", "CALL", "STATUS"):
        table.add_column(column)
    for call in calls:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(call["time"]))
        table.add_row(stamp, call["user"], f"{call['method']} {call['path']}", str(call["status"]))
    Console().print(table)


def register(app: typer.Typer) -> None:
    app.command("submit")(submit_command)
    app.command("jobs")(jobs_command)
    app.command("describe")(describe_command)
    app.command("logs")(logs_command)
    app.command("cancel")(cancel_command)
    app.command("audit")(audit_command)
    app.command("queues")(queues_command)
    app.add_typer(users, name="users")
