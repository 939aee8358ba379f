"""The engine-side start of one rank: picks its rank, sets its environment, runs the shim.

    python -I -S suan/exec/_rank.py LAUNCH_JSON

An engine (Slurm's srun, a Ray actor) starts this script once per rank on each node of a
launch. It only knows which node it is on and its index among the launch's processes on that
node (the variables named by `node_var` and `local_var` in LAUNCH_JSON). From them it finds its
rank in the placement, takes its share of the device ids the engine gave the node (the
variable `devices_var`: Slurm's SLURM_STEP_GPUS), writes them to `rank-R.devices` (the
placement of record), sets the rank's variables and the vendor's visible-devices variable,
appends its output to the rank's log, and becomes the shim (suan.exec._shim), which records the
exit code. When the launch names an account (`run_as`) and the engine started this script as
root (a Ray worker), it becomes that account before running anything of the job's. It uses
only the standard library, so it starts in milliseconds.

LAUNCH_JSON holds {"python", "shim", "command", "node_var", "local_var", "devices_var",
"visible_var", "run_as": {"name", "uid", "gid"} | null,
"ranks": [{"node", "devices", "env", "log", "exit", "devices_file"}]}.
"""

from __future__ import annotations

import json
import os
import sys
import time


def pick_rank(ranks: list[dict], node: str, local: int) -> int:
    """The rank index of the `local`-th process on `node` (ranks in placement order)."""
    on_node = [index for index, rank in enumerate(ranks) if rank["node"] == node]
    if local >= len(on_node):
        raise SystemExit(f"suan: node {node!r} runs {len(on_node)} ranks, not process {local}")
    return on_node[local]


def share_of_devices(given: str, ranks: list[dict], node: str, rank: int) -> list[str]:
    """This rank's slice of the node's device ids, in the order the engine listed them."""
    ids = [item for item in given.split(",") if item.strip()]
    before = sum(r["devices"] for r in ranks[:rank] if r["node"] == node)
    return ids[before : before + ranks[rank]["devices"]]


def become(account: dict | None, log: int, env: dict[str, str]) -> None:
    """Switch to `account` (and hand it the log) when running as root for another account."""
    if not account or os.getuid() == account["uid"]:
        return
    if os.getuid() != 0:
        raise SystemExit(f"suan: cannot run as {account['name']}: this rank starter is not root")
    os.fchown(log, account["uid"], account["gid"])
    os.setgroups([])
    os.setgid(account["gid"])
    os.setuid(account["uid"])
    env.update(USER=account["name"], LOGNAME=account["name"])


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: _rank.py LAUNCH_JSON", file=sys.stderr)
        return 2
    with open(argv[0]) as handle:
        launch = json.load(handle)
    node = os.environ.get(launch["node_var"], "")
    local = int(os.environ.get(launch["local_var"], "0"))
    ranks = launch["ranks"]
    rank = pick_rank(ranks, node, local)
    spec = ranks[rank]
    env = dict(os.environ)
    env.update(spec["env"])
    given = os.environ.get(launch.get("devices_var") or "", "")
    if given and launch.get("visible_var"):
        mine = share_of_devices(given, ranks, node, rank)
        env[launch["visible_var"]] = ",".join(mine)
        with open(spec["devices_file"] + ".tmp", "w") as handle:
            handle.write(",".join(mine) + "\n")
        os.replace(spec["devices_file"] + ".tmp", spec["devices_file"])
    log = os.open(spec["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    become(launch.get("run_as"), log, env)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    header = f"--- suan: attempt {launch['attempt']}, rank {rank}, {node}, {stamp} ---\n"
    os.write(log, header.encode())
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    shim = [launch["python"], "-I", "-S", launch["shim"], spec["exit"], "--", *launch["command"]]
    if launch.get("workdir"):
        os.chdir(launch["workdir"])
    os.execve(shim[0], shim, env)
    return 127  # pragma: no cover - execve does not return


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
