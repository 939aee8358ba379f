"""Layout settings a training framework fixes for the user, applied when the command is silent.

torchtitan's tensor parallelism always shards the norms (and so the activations between the
tensor-parallel regions) by sequence: its `parallelize` plan wraps every `attention_norm`,
`ffn_norm` and the final `norm` in `SequenceParallel()` (torchtitan
`torchtitan/models/llama3/infra/parallelize.py`). A torchtitan run with tp > 1 is therefore a
sequence-parallel run, whether or not the user says so. Megatron-Core, NeMo and
Megatron-Bridge leave it to the `--sequence-parallel` flag (off by default in Megatron-LM).
"""

from __future__ import annotations

ALWAYS_SEQUENCE_PARALLEL = {
    "torchtitan": "torchtitan's tensor-parallel plan shards norms by sequence "
                  "(SequenceParallel)",
}
"""Frameworks whose tensor parallelism is always sequence-parallel → why."""


def sequence_parallel(option: bool | None, framework: str | None, tp: int) -> tuple[bool, str]:
    """Whether a plan uses sequence parallelism, and a note when the framework decided it:
    the `option` when given, else on for `ALWAYS_SEQUENCE_PARALLEL` frameworks at tp > 1."""
    if option is not None:
        return option, ""
    why = ALWAYS_SEQUENCE_PARALLEL.get(framework or "")
    if why and tp > 1:
        return True, f"sequence parallelism on (--framework {framework}: {why})"
    return False, ""
