"""``--max-memory``: choose the GradCache mini-batch so that a training step fits a memory budget.

A step's memory is a fixed part (what the process holds once the model is loaded, plus a gradient and AdamW's two
moments: 12 bytes a trainable parameter) plus the activations that backward keeps, which grow with the tokens of the
views that go through the encoder together. Per token and layer a BERT-style block keeps about 18 H floats
(Q, K, V, the attention output, two LayerNorm inputs, the FFN's 4 H input and GELU output, dropout masks) and
3 x heads x T floats for the attention scores, probabilities and their dropout mask (Korthikanti et al. 2022,
arXiv:2205.05198, count the same terms in half precision). With GradCache (Gao et al. 2021, arXiv:2101.06983) only
one mini-batch's activations live at a time, and the loss is exact, so the largest mini-batch that fits is chosen.

The estimate errs high (bf16 autocast keeps some activations in half precision); ``benchmarks/gradcache_memory.py
--max-memory`` measures the peak it gives.

On the CPU the estimate alone is not enough: glibc keeps freed blocks below its *dynamic* mmap threshold (which rises
to the size of the largest block freed, up to 32 MiB) for reuse, and a step's activations, whose sizes change with
every batch's widths, fragment that heap until the resident set is gigabytes above what is live.
:func:`return_freed_memory` fixes the threshold at 1 MiB, so every large block is mapped on its own and given back to
the kernel when freed, at the price of zero-filling fresh pages; ``--max-memory`` turns it on.
``benchmarks/gradcache_memory.py`` measures the peaks with and without it (docs/performance.md, section 8).
"""

from __future__ import annotations

import os
import re

from decone.errors import ConfigError

_UNITS = {"": 1, "b": 1, "k": 2**10, "kb": 2**10, "kib": 2**10, "m": 2**20, "mb": 2**20, "mib": 2**20,
          "g": 2**30, "gb": 2**30, "gib": 2**30, "t": 2**40, "tb": 2**40, "tib": 2**40}
PROCESS_BYTES = 700 * 2**20  #: Python, torch, transformers and the tokenizer, before any model (measured: 0.6-0.7 GB)
DEFAULT_SHARE = 0.7  #: the budget when none is given: what the process holds plus this share of the free memory


def parse_size(text: str, flag: str = "--max-memory") -> int:
    """``"4GB"``, ``"4 GiB"``, ``"512M"``, ``"3.5g"`` -> bytes (powers of 1024)."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(text))
    if not match or match.group(2).lower() not in _UNITS:
        raise ConfigError(f"{flag} {text!r}: expected a size such as 4GB, 3.5G or 512MB")
    size = int(float(match.group(1)) * _UNITS[match.group(2).lower()])
    if size <= PROCESS_BYTES:
        raise ConfigError(f"{flag} {text}: too small; the process alone takes about {PROCESS_BYTES / 2**30:.1f} GB")
    return size


def held_and_free(device) -> tuple[int, int]:
    """(bytes this process holds now, bytes free now): on a GPU its allocated memory and ``mem_get_info``'s free;
    on the CPU the process's resident set and the RAM available (psutil, else /proc)."""
    import torch

    if getattr(device, "type", str(device)) == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(torch.cuda.memory_allocated(device)), int(free)
    try:
        import psutil

        return int(psutil.Process().memory_info().rss), int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:  # Linux without psutil
        with open("/proc/self/statm") as f:
            held = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        with open("/proc/meminfo") as f:
            info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f}
        return held, info.get("MemAvailable", info.get("MemFree", 0))
    except (OSError, ValueError, IndexError):  # elsewhere without psutil: unknown, so no default budget applies
        return 0, 2**62


def optimizer_bytes(model) -> int:
    """What training adds to the loaded weights: a gradient and AdamW's two moments per trainable parameter."""
    return 12 * sum(p.numel() for p in model.parameters() if p.requires_grad)


def activation_bytes(config, examples: int, views: int, tokens: int) -> int:
    """Activations backward keeps for ``examples`` x ``views`` sequences of ``tokens`` tokens (fp32)."""
    hidden = int(getattr(config, "hidden_size", 0) or getattr(config, "n_embd", 0))
    layers = int(getattr(config, "num_hidden_layers", 0) or getattr(config, "n_layer", 0))
    heads = int(getattr(config, "num_attention_heads", 0) or getattr(config, "n_head", 1))
    per_token_layer = 4 * (18 * hidden + 3 * heads * tokens)
    return examples * views * tokens * layers * per_token_layer


def largest_mini_batch(fixed: int, per_example: int, batch: int, budget: int) -> int:
    """The largest number of examples (at most ``batch``) whose activations fit ``budget`` beside ``fixed`` bytes;
    ``batch`` when the whole batch fits, below 2 when not even a pair does."""
    if fixed + batch * per_example <= budget:
        return batch
    return int(max(0, budget - fixed) // max(1, per_example))


M_MMAP_THRESHOLD = -3  #: glibc's mallopt parameter (malloc.h)


def return_freed_memory(threshold: int = 1 << 20) -> bool:
    """Have glibc's malloc serve every block of at least ``threshold`` bytes from its own mapping and unmap it when
    freed (a fixed mmap threshold, which also turns the dynamic one off), so that the process's resident set follows
    the memory in use instead of its high-water mark. Process-wide and for the rest of the process. False where the C
    library has no such setting (macOS, musl) or refuses it."""
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):  # TypeError: Windows' ctypes has no CDLL(None)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt(M_MMAP_THRESHOLD, int(threshold)) == 1
