"""The plain LoRALinear and the fused one vs PEFT vs loralib vs the frozen base (forward + backward),
all measured interleaved in one run; and a merged LoRALinear vs nn.Linear.

The forward+backward ratios are paired: in each round every layer runs once (the order rotated from
round to round) and is divided by the frozen base's time in the same round; the table shows the
median of those ratios, which holds up on a shared machine better than a ratio of medians."""

from __future__ import annotations

import statistics
import time

import loralib
import torch
from peft import LoraConfig, inject_adapter_in_model
from torch import nn

from benchmarks.common import print_table
from lora_lab.lora.fused import FusedLoRALinear
from lora_lab.lora.layer import LoRALinear


class _Holder(nn.Module):
    def __init__(self, d: int):
        super().__init__()
        self.proj = nn.Linear(d, d)

    def forward(self, x):
        return self.proj(x)


def _contenders(d: int, r: int, device: str, dtype: torch.dtype) -> dict[str, nn.Module]:
    torch.manual_seed(0)
    base = nn.Linear(d, d).requires_grad_(False)
    plain = LoRALinear(nn.Linear(d, d), r=r, alpha=r)
    fused = FusedLoRALinear(nn.Linear(d, d), r=r, alpha=r)
    peft = inject_adapter_in_model(LoraConfig(r=r, lora_alpha=r, target_modules=["proj"]), _Holder(d))
    lib = loralib.Linear(d, d, r=r, lora_alpha=r, merge_weights=False)
    loralib.mark_only_lora_as_trainable(lib)
    mods = {"frozen nn.Linear": base, "lora_lab LoRALinear (plain)": plain,
            "lora_lab FusedLoRALinear": fused, "PEFT LoRA Linear": peft, "loralib Linear": lib}
    for m in mods.values():
        m.to(device=device, dtype=dtype).train()
        for name, p in m.named_parameters():
            if "lora_B" in name:  # a trained adapter, so no path is a multiply by zero
                nn.init.normal_(p, std=0.02)
    return mods


def _step(module: nn.Module, x: torch.Tensor, g: torch.Tensor):
    def run():
        x.grad = None
        module(x).backward(g)
        if x.is_cuda:
            torch.cuda.synchronize()
    return run


def paired_rounds(contenders: dict, rounds: int, warmup: int = 3) -> dict[str, list[float]]:
    """Seconds per call of each contender, one call each per round, the order rotated per round."""
    names = list(contenders)
    for _ in range(warmup):
        for fn in contenders.values():
            fn()
    seconds = {name: [] for name in names}
    for i in range(rounds):
        for name in names[i % len(names):] + names[:i % len(names)]:
            start = time.perf_counter()
            contenders[name]()
            seconds[name].append(time.perf_counter() - start)
    return seconds


def bench_forward_backward(d=1024, r=8, tokens=8192, device="cpu", dtype=torch.float32, rounds=15):
    """Median forward+backward time per layer and its paired ratio to the frozen base (x requires
    grad, as inside a deeper network)."""
    x = torch.randn(tokens, d, device=device, dtype=dtype, requires_grad=True)
    g = torch.randn(tokens, d, device=device, dtype=dtype)
    mods = _contenders(d, r, device, dtype)
    seconds = paired_rounds({k: _step(m, x, g) for k, m in mods.items()}, rounds=rounds)
    plain, fused, peft, base = ("lora_lab LoRALinear (plain)", "lora_lab FusedLoRALinear", "PEFT LoRA Linear",
                                "frozen nn.Linear")

    def ratio(name, ref=base):  # the median of per-round ratios
        return statistics.median(t / t0 for t, t0 in zip(seconds[name], seconds[ref], strict=True))
    goals = {plain: "≈ PEFT (readable)", fused: "≤ 1.15× base"}
    rows = [(n, f"{statistics.median(t) * 1e3:.2f}", f"{ratio(n):.2f}×", goals.get(n, ""))
            for n, t in seconds.items()]
    rows.append(("lora_lab plain / PEFT", "", f"{ratio(plain, peft):.2f}×", "≈ 1.0×"))
    rows.append(("lora_lab fused / PEFT", "", f"{ratio(fused, peft):.2f}×", "≤ 0.85×"))
    medians = {n: statistics.median(t) for n, t in seconds.items()}
    print_table(f"forward + backward, d={d}, r={r}, {tokens:,} tokens, {device}, {str(dtype)[6:]}",
                rows, ("layer", "median ms", "vs frozen base", "goal"))
    return medians


def bench_merged(d=1024, r=8, tokens=8192, device="cpu", dtype=torch.float32, rounds=15):
    """A merged LoRALinear's forward against a plain nn.Linear of the same size."""
    torch.manual_seed(0)
    x = torch.randn(tokens, d, device=device, dtype=dtype)
    plain = nn.Linear(d, d).to(device=device, dtype=dtype)
    merged = LoRALinear(nn.Linear(d, d), r=r).to(device=device, dtype=dtype)
    merged.merge()

    def fwd(m):
        def run():
            with torch.no_grad():
                m(x)
            if x.is_cuda:
                torch.cuda.synchronize()
        return run
    seconds = paired_rounds({"nn.Linear": fwd(plain), "merged LoRALinear": fwd(merged)}, rounds=rounds)
    paired = statistics.median(t / t0 for t, t0 in zip(seconds["merged LoRALinear"], seconds["nn.Linear"],
                                                        strict=True))
    medians = {n: statistics.median(t) for n, t in seconds.items()}
    rows = [("nn.Linear", f"{medians['nn.Linear'] * 1e3:.2f}", "1.00×", ""),
            ("merged LoRALinear", f"{medians['merged LoRALinear'] * 1e3:.2f}", f"{paired:.2f}×", "≈ 1.00×")]
    print_table(f"inference forward, d={d}, {tokens:,} tokens, {device}", rows,
                ("layer", "median ms", "vs nn.Linear", "goal"))
    return medians


def main() -> None:
    bench_forward_backward()
    bench_merged()


if __name__ == "__main__":
    main()
