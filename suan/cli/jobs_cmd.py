"""The researcher's commands against a running server, after sbatch/squeue/scancel and
kubectl: `suan submit`, `suan jobs`, `suan describe`, `suan logs`, `suan cancel`,
`suan queues`, and `suan users add` (`suan tokens` is in tokens_cmd, `suan nodes` in
nodes_cmd). SUAN_SERVER and SUAN_TOKEN pick the server and identity."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from suan.cli.batch_rows import array_lines, batch_lines, compact_rows
from suan.cli.files import text_file
from suan.cli.listing import (
    Column,
    JsonOption,
    Listing,
    NoHeaderOption,
    Output,
    OutputOption,
    chosen,
    note,
    output_console,
    show,
    stdout_is_terminal,
)
from suan.jobs.batch_syntax import with_dependency

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
    file: Path = typer.Argument(
        ..., help="Job (and Queue) YAML, see docs/job-spec.md.", callback=text_file, readable=False
    ),
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
    dependency: str | None = typer.Option(
        None,
        "--dependency",
        "-d",
        help="Start only after other jobs, as sbatch: afterok:ID[:ID...][,afterany:ID...] "
        "(kinds after, afterok, afternotok, afterany; an id, array id or job name). Sets "
        "spec.dependencies of every Job in the file.",
    ),
) -> None:
    """Submit the jobs of a spec file; print each new job id (each member of an array)."""
    text = file.read_text()
    if dependency is not None:
        try:
            text = with_dependency(text, dependency)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--dependency") from None
    with Client() as client:
        result = client.submit_raw(
            text, workdir or str(Path.cwd()), idempotency_key=idempotency_key
        )
    for queue in result["queues"]:
        typer.echo(f"queue/{queue} configured", err=True)
    for job in result["jobs"]:
        typer.echo(job["id"])


JOB_COLUMNS = (
    Column("ID"), Column("USER"), Column("QUEUE"), Column("STATE"), Column("RANKS"),
    Column("DEVICES", wide=True), Column("PRIORITY", wide=True), Column("AGE"),
    Column("SUBMITTED", wide=True), Column("RESTARTS"), Column("EXIT", wide=True),
    Column("REASON"),
)
WATCH_DEFAULT_S = 2.0
"""Seconds between refreshes of `suan jobs --watch` without a number, as `watch(1)`."""


def with_watch_value(argv: list[str]) -> list[str]:
    """`argv` with the default seconds after a bare `--watch` of `suan jobs` (the option's
    value is optional: `--watch`, `--watch 5`, `--watch=5`)."""
    if "jobs" not in argv[:1]:
        return argv
    fixed = list(argv)
    for index, word in enumerate(fixed):
        if word == "--":
            break
        if word in ("--watch", "-w"):
            following = fixed[index + 1] if index + 1 < len(fixed) else ""
            if not _is_number(following):
                fixed.insert(index + 1, f"{WATCH_DEFAULT_S:g}")
    return fixed


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def jobs_command(
    array: str | None = typer.Argument(
        None, help="An array id: list its members (finished ones too), one line each."
    ),
    expand: bool = typer.Option(
        False, "--expand", "-e", help="One line per array member, not one per array."
    ),
    all_jobs: bool = typer.Option(False, "--all", "-a", help="Include finished jobs."),
    user: list[str] | None = typer.Option(
        None, "--user", "-u", help="Only these users' jobs (repeatable, or a comma list)."
    ),
    queue: list[str] | None = typer.Option(
        None, "--queue", "-q", help="Only these queues' jobs (repeatable, or a comma list)."
    ),
    state: list[str] | None = typer.Option(
        None,
        "--state",
        "-s",
        help="Only jobs in these states (repeatable, or a comma list): pending, scheduled, "
        "running, succeeded, failed, cancelled, timeout, preempted, restarting. Finished states "
        "need no --all.",
    ),
    watch: float | None = typer.Option(
        None,
        "--watch",
        "-w",
        min=0.5,
        max=3600,
        help=f"Print the list again every SECONDS (default {WATCH_DEFAULT_S:g}) until Ctrl-C.",
        metavar="[SECONDS]",
    ),
    limit: int = typer.Option(
        100, "--limit", "-n", min=1, max=10_000, help="Jobs per page (at most 10,000)."
    ),
    page: str | None = typer.Option(
        None, "--page", help="Show the page that starts at this token (printed under a page)."
    ),
    all_pages: bool = typer.Option(False, "--all-pages", help="Show every page."),
    output: OutputOption = None,
    no_header: NoHeaderOption = False,
    as_json: JsonOption = False,
) -> None:
    """List jobs (yours, your queues', or all for an admin), newest first, a page at a time;
    under a cut list it says how many more there are and how to see them."""
    shown = chosen(output, as_json)
    filters: dict[str, Any] = {"user": user or [], "queue": queue or [], "state": state or []}
    if array is not None:
        filters["array"], expand = array, True
    paging = (all_jobs, limit, page, all_pages, expand)
    with Client() as client:
        if watch is None:
            _show_jobs(client, filters, paging, shown, no_header)
            return
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends a watch, as in watch(1)
            while True:
                _show_jobs(client, filters, paging, shown, no_header)
                time.sleep(watch)
                if stdout_is_terminal():
                    typer.echo("\x1b[H\x1b[2J", nl=False)


def _show_jobs(
    client: Any,
    filters: dict[str, Any],
    paging: tuple[bool, int, str | None, bool, bool],
    shown: Output,
    no_header: bool,
) -> None:
    """One listing of `suan jobs`: fetch the page (or every page) and print it, an array on
    one line unless `expand` (the last of `paging`)."""
    all_jobs, limit, page, all_pages, expand = paging
    if all_pages:
        jobs, more = list(client.iter_jobs(all_jobs, max(limit, 1000), **filters)), None
    else:
        answer = client.jobs_page(all_jobs, limit, page, **filters)
        jobs, more = answer["jobs"], answer
    rows = [_job_row(job) for job in jobs] if expand else compact_rows(jobs, _job_row)
    show(Listing(JOB_COLUMNS, rows, jobs), shown, no_header)
    if more and more.get("next"):
        note(_more_note(more, all_jobs, limit, filters), shown)


def _job_row(job: dict[str, Any]) -> list[Any]:
    reason = "" if job["state"] in ("running", "succeeded") else job["reason"]
    submitted = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(job["submit_time"]))
    return [
        job["id"], job["user"], job["queue"], job["state"], job["ranks"],
        f"{job.get('devices', 0):g}", job.get("priority", ""), _age(job["submit_time"]),
        submitted, job["restarts"], job.get("exit_code"), reason,
    ]


def _more_note(
    answer: dict[str, Any], all_jobs: bool, limit: int, filters: dict[str, list[str]]
) -> str:
    """The line under a cut list: how many more jobs, and the flags that show them."""
    flags = " --all" if all_jobs else ""
    for name, values in filters.items():
        if name == "array":
            flags = f" {values}" + flags
            continue
        flags += f" --{name} {','.join(values)}" if values else ""
    flags += f" --limit {limit}" if limit != 100 else ""
    return (
        f"{answer['remaining']} more: `suan jobs{flags} --page {answer['next']}` for the next "
        f"page, --all-pages for every one"
    )


def describe_command(
    job_id: str = typer.Argument(..., help="Job id (from `suan submit` or `suan jobs`)."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Show a job: spec, state, placement, ranks, events, and why it waits; or an array: its
    members and how many are in each state."""
    with Client() as client:
        job = client.describe(job_id)
    if as_json:
        _print_json(job)
        return
    out = output_console()
    if job.get("array") is True:
        for line in array_lines(job):
            out.print(line, highlight=False, markup=False)
        return
    out.print(
        f"[bold]{escape(job['id'])}[/]  {job['state']}  user {job['user']}  "
        f"queue {escape(job['queue'])}"
        f"  priority {job['priority']}  attempt {job['attempt']}  "
        f"restarts {job['restarts']}"
    )
    if job["reason"]:
        label = (
            "why it waits" if job["state"] in ("pending", "preempted", "restarting") else "reason"
        )
        out.print(f"[bold]{label}:[/] {escape(job['reason'])}", highlight=False)
    for line in batch_lines(job):
        out.print(line, highlight=False, markup=False)
    if job["placement"]:
        out.print(f"[bold]placement:[/] {escape(job['placement']['why'])}", highlight=False)
    for rank in job["ranks_detail"]:
        code = "" if rank["exit_code"] is None else f" exit {rank['exit_code']}"
        where = f"engine id {rank['engine_id']}" if rank.get("engine_id") else f"pid {rank['pid']}"
        out.print(
            f"  rank {rank['rank']}: {rank['node']} devices [{rank['devices']}] {where}{code}",
            highlight=False,
            markup=False,
        )
    out.print(f"[bold]checkpoints:[/] {escape(str(job['checkpoint_dir']))}", highlight=False)
    from suan.cli.goodput_cmd import describe_lines

    for line in describe_lines(job):
        out.print(line, highlight=False, markup=False)
    out.print("[bold]events:[/]")
    for event in job["events"]:
        stamp = time.strftime("%H:%M:%S", time.localtime(event["time"]))
        out.print(f"  {stamp} {event['kind']:<17} {event['message']}", highlight=False,
                  markup=False)
    out.print("[bold]spec:[/]")
    out.print(json.dumps(job["spec"], indent=2), highlight=False, markup=False)


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


QUEUE_COLUMNS = tuple(
    Column(header)
    for header in ("QUEUE", "PARENT", "GUARANTEED", "BORROW LIMIT", "USED", "RUNNING",
                   "WAITING", "ADMINS", "SUBMITTERS")
)


def queues_command(
    output: OutputOption = None,
    no_header: NoHeaderOption = False,
    as_json: JsonOption = False,
) -> None:
    """List queues with their quotas, devices in use, running and waiting jobs."""
    with Client() as client:
        queues = client.queues()
    rows = [
        [
            queue["name"],
            queue["parent"] or "",
            _amounts(queue["guaranteed"]),
            _amounts(queue["borrow_limit"]),
            _amounts(queue["used"]),
            queue["running"],
            queue["waiting"],
            ", ".join(queue["admins"]),
            "*" if queue.get("open", True) else ", ".join(queue["submitters"] or []),
        ]
        for queue in queues
    ]
    show(Listing(QUEUE_COLUMNS, rows, queues), chosen(output, as_json), no_header)


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


AUDIT_COLUMNS = (Column("TIME"), Column("USER"), Column("CALL"), Column("STATUS"))


def audit_command(
    limit: int = typer.Option(100, "--limit", help="How many calls, newest first."),
    output: OutputOption = None,
    no_header: NoHeaderOption = False,
    as_json: JsonOption = False,
) -> None:
    """The audit log: every mutating API call, who made it and its status (admins only)."""
    with Client() as client:
        calls = client.audit(limit)
    rows = [
        [
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(call["time"])),
            call["user"],
            f"{call['method']} {call['path']}",
            call["status"],
        ]
        for call in calls
    ]
    show(Listing(AUDIT_COLUMNS, rows, calls), chosen(output, as_json), no_header)


def register(app: typer.Typer) -> None:
    app.command("submit")(submit_command)
    app.command("jobs")(jobs_command)
    app.command("describe")(describe_command)
    app.command("logs")(logs_command)
    app.command("cancel")(cancel_command)
    app.command("audit")(audit_command)
    app.command("queues")(queues_command)
    app.add_typer(users, name="users")
