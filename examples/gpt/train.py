"""A small GPT-style language model trained with DistributedDataParallel, the Suan way.

Run it under Suan (`suan submit examples/gpt/job.yaml`) or torchrun: it reads the torchrun
variables (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT, LOCAL_RANK) and Suan's
(SUAN_COLLECTIVE_BACKEND: gloo on CPU; SUAN_CHECKPOINT_DIR; SUAN_RESTART_COUNT).

The corpus is generated: sentences from a tiny grammar, so the example needs no download. Rank 0
saves a checkpoint every `--checkpoint-every` steps (atomically, to SUAN_CHECKPOINT_DIR/ckpt.pt);
every rank resumes from it on a restart, so a killed rank or a preemption costs at most that
many steps. Each rank draws its own batches (seeded by rank and step). Every 10 steps each rank
prints a progress line (`suan.progress.report`: step, tokens, step and checkpoint seconds),
from which the control plane computes the job's goodput, advises a checkpoint interval and
notices a hung or slow rank; `suan describe` shows them.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.nn import functional as F
from torch.nn.parallel import DistributedDataParallel

from suan.progress import report

SUBJECTS = ["the cat", "a dog", "the model", "every rank", "the cluster", "a researcher"]
VERBS = ["sees", "trains", "schedules", "likes", "checkpoints", "resumes"]
OBJECTS = ["the data", "a gang", "the gpus", "its loss", "the queue", "a token"]


def corpus(sentences: int = 4000, seed: int = 0) -> str:
    """Text from a tiny grammar: '<subject> <verb> <object>.' lines, deterministic."""
    rng = random.Random(seed)
    lines = [
        f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}."
        for _ in range(sentences)
    ]
    return "\n".join(lines) + "\n"


class Block(nn.Module):
    """Pre-norm transformer block: causal self-attention and an MLP."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.mlp = nn.Sequential(
            nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        length = x.size(1)
        mask = torch.triu(torch.ones(length, length, dtype=torch.bool), diagonal=1)
        h = self.norm1(x)
        x = x + self.attn(h, h, h, attn_mask=mask, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class GPT(nn.Module):
    """Token and position embeddings, `layers` blocks, a tied output head."""

    def __init__(self, vocab: int, context: int, width: int = 64, heads: int = 4, layers: int = 2):
        super().__init__()
        self.tokens = nn.Embedding(vocab, width)
        self.positions = nn.Embedding(context, width)
        self.blocks = nn.Sequential(*[Block(width, heads) for _ in range(layers)])
        self.norm = nn.LayerNorm(width)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(idx.size(1), device=idx.device)
        x = self.blocks(self.tokens(idx) + self.positions(positions))
        return self.norm(x) @ self.tokens.weight.T


def batch(data: torch.Tensor, context: int, size: int, seed: int) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(seed)
    starts = torch.randint(0, len(data) - context - 1, (size,), generator=generator)
    x = torch.stack([data[s : s + context] for s in starts])
    y = torch.stack([data[s + 1 : s + context + 1] for s in starts])
    return x, y


def save(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, step: int) -> None:
    temporary = path.with_suffix(".tmp")
    torch.save(
        {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step}, temporary
    )
    os.replace(temporary, path)


@torch.no_grad()
def sample(
    model: GPT, stoi: dict[str, int], itos: list[str], prompt: str, length: int, context: int
) -> str:
    idx = torch.tensor([[stoi[c] for c in prompt]])
    for _ in range(length):
        logits = model(idx[:, -context:])[:, -1]
        idx = torch.cat([idx, logits.argmax(-1, keepdim=True)], dim=1)
    return "".join(itos[i] for i in idx[0].tolist())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--checkpoint-every", type=int, default=50)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--context", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument(
        "--step-seconds", type=float, default=0.0, help="pause after each step (to watch it)"
    )
    args = parser.parse_args()

    torch.set_num_threads(1)
    backend = os.environ.get("SUAN_COLLECTIVE_BACKEND", "gloo")
    use_cuda = backend == "nccl" and torch.cuda.is_available()
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    device = torch.device("cuda", 0) if use_cuda else torch.device("cpu")
    ckpt_dir = Path(os.environ.get("SUAN_CHECKPOINT_DIR", "checkpoints"))
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    ckpt = ckpt_dir / "ckpt.pt"

    text = corpus()
    itos = sorted(set(text))
    stoi = {c: i for i, c in enumerate(itos)}
    data = torch.tensor([stoi[c] for c in text], dtype=torch.long)
    torch.manual_seed(0)
    model = GPT(len(itos), args.context).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
    start = 0
    if ckpt.exists():
        state = torch.load(ckpt, map_location=device)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start = state["step"]
    ddp = DistributedDataParallel(model)
    if rank == 0:
        restart = os.environ.get("SUAN_RESTART_COUNT", "0")
        print(
            f"world {world}, backend {dist.get_backend()}, restart {restart}, "
            f"resuming at step {start}/{args.steps}",
            flush=True,
        )

    began = time.monotonic()
    loss = torch.tensor(math.nan)
    saved_s: float | None = None
    for step in range(start, args.steps):
        step_began = time.perf_counter()
        x, y = batch(data, args.context, args.batch, seed=step * world + rank)
        logits = ddp(x.to(device))
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.to(device).reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        time.sleep(args.step_seconds)
        step_s = time.perf_counter() - step_began
        done = step + 1
        if done % args.checkpoint_every == 0 or done == args.steps:
            save_began = time.perf_counter()
            if rank == 0:
                save(ckpt, model, optimizer, done)
            dist.barrier()
            saved_s = time.perf_counter() - save_began
        if done % 10 == 0 or done == args.steps:
            # every rank: a progress line for the control plane (goodput, hangs, stragglers)
            report(done, tokens=done * args.batch * args.context, step_time_s=round(step_s, 6),
                   checkpoint_s=None if saved_s is None else round(saved_s, 6))
            saved_s = None
        if rank == 0 and (done % 10 == 0 or done == args.steps):
            rate = (done - start) * args.batch * args.context * world / (time.monotonic() - began)
            print(f"step {done:4d}  loss {loss.item():.3f}  tokens/s {rate:,.0f}", flush=True)
    if rank == 0:
        print("sample:", sample(model, stoi, itos, "the ", 40, args.context).replace("\n", " | "))
        print(f"final loss {loss.item():.6f}", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
