"""On CUDA: LoRA vs full fine-tuning of a ≥1B-parameter decoder built from a config (random
weights, nothing downloaded), AdamW, bfloat16 weights and optimizer states. Prints peak memory,
step time and tokens/s, lora_lab's LoRA and PEFT's side by side, at two sequence lengths.

`--tiny` runs the same code on a tiny config on the CPU (a smoke test of the benchmark itself).
"""

from __future__ import annotations

import argparse
import gc
import time

import torch

from benchmarks.common import print_table

ATTN = ["q_proj", "v_proj"]
ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def decoder_config(tiny: bool):
    """A Llama-style decoder: 22 layers, d_model 2048 (1.10B parameters), or a tiny one."""
    from transformers import LlamaConfig

    if tiny:
        return LlamaConfig(vocab_size=512, hidden_size=64, intermediate_size=176, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048)
    return LlamaConfig(vocab_size=32000, hidden_size=2048, intermediate_size=5632, num_hidden_layers=22,
                       num_attention_heads=32, num_key_value_heads=4, max_position_embeddings=2048)


def build(kind: str, config, device: str, r: int = 8):
    """The model for one contender: 'full', 'lora_lab q,v', 'PEFT all linear', …"""
    from transformers import LlamaForCausalLM

    torch.manual_seed(0)
    model = LlamaForCausalLM(config).to(device=device, dtype=torch.bfloat16)
    if kind == "full":
        return model
    library, _, which = kind.partition(" ")
    targets = ATTN if which == "q,v" else ALL_LINEAR
    if library == "PEFT":
        from peft import LoraConfig, get_peft_model

        return get_peft_model(model, LoraConfig(r=r, lora_alpha=2 * r, target_modules=targets))
    from lora_lab.lora.inject import add_lora

    return add_lora(model, targets, r=r, alpha=2 * r)


def measure(model, batch: int, seq: int, device: str, steps: int = 5) -> dict:
    """Peak memory (GiB), median step time (s) and tokens/s of AdamW training steps."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-5)
    ids = torch.randint(0, model.config.vocab_size, (batch, seq), device=device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for step in range(steps + 2):
        start = time.perf_counter()
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if device == "cuda":
            torch.cuda.synchronize()
        if step >= 2:  # two warm-up steps
            times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else float("nan")
    step_time = sorted(times)[len(times) // 2]
    return {"peak GiB": peak, "step s": step_time, "tokens/s": batch * seq / step_time,
            "trainable": sum(p.numel() for p in params), "total": sum(p.numel() for p in model.parameters())}


def run(tiny: bool, batch: int, seqs: list[int], steps: int) -> None:
    device = "cpu" if tiny else "cuda"
    config = decoder_config(tiny)
    kinds = ["full", "lora_lab q,v", "PEFT q,v", "lora_lab all", "PEFT all"]
    for seq in seqs:
        results = {}
        for kind in kinds:
            model = build(kind, config, device)
            results[kind] = measure(model, batch, seq, device, steps)
            del model
            gc.collect()
            if device == "cuda":
                torch.cuda.empty_cache()
        full = results["full"]
        mem = "n/a (CPU)" if device == "cpu" else None
        rows = [(k, f"{v['trainable']:,}", mem or f"{v['peak GiB']:.2f}",
                 mem or f"{v['peak GiB'] / full['peak GiB']:.2f}×",
                 f"{v['tokens/s']:,.0f}", f"{v['tokens/s'] / full['tokens/s']:.2f}×")
                for k, v in results.items()]
        title = f"decoder {full['total'] / 1e9:.2f}B params, batch {batch} × {seq} tokens, {device}, bf16"
        print_table(title, rows, ("run", "trainable", "peak GiB", "vs full", "tokens/s", "vs full"))
    print("\nThe paper (§4.2): GPT-3 175B training VRAM 1.2 TB -> 350 GB with LoRA (ratio 0.29). Here the"
          " frozen weights are a larger share of a small model and activations grow with batch × seq.")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tiny", action="store_true", help="tiny config on the CPU (smoke test)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, nargs="+", default=[512, 1024])
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args(argv)
    if not args.tiny and not torch.cuda.is_available():
        print("\n## GPU benchmarks: skipped (no CUDA device here; `python -m benchmarks.bench_gpu --tiny`"
              " runs the same code on a tiny CPU model)")
        return
    run(args.tiny, args.batch if not args.tiny else 2, args.seq if not args.tiny else [32, 64], args.steps)
    if not args.tiny:
        from benchmarks.bench_layers import bench_forward_backward

        bench_forward_backward(d=4096, r=16, tokens=16384, device="cuda", dtype=torch.bfloat16)


if __name__ == "__main__":
    main()
