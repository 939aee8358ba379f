"""A rank program that reports the world it joined: init gloo, all_reduce(rank + 1), print.

Prints `WORLD <rank> <world size> <sum>`; the sum is world*(world+1)/2 only when every rank of
one world took part."""

import datetime

import torch
import torch.distributed as dist

dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=60))
value = torch.tensor([float(dist.get_rank() + 1)])
dist.all_reduce(value)
print(f"WORLD {dist.get_rank()} {dist.get_world_size()} {value.item():.0f}", flush=True)
dist.destroy_process_group()
