"""Whole Mask2Former R50 forward on CPU at Cityscapes size (1024x2048): maskbench vs HF transformers.

Both run the same random weights: the parent builds HF ``Mask2FormerForUniversalSegmentation`` (R50 via HF
``ResNetConfig``, Cityscapes semantic shapes: 19 classes, 100 queries, 9 decoder layers, 6 encoder layers),
randomizes it, and writes it with ``save_pretrained``; maskbench loads that directory with ``load_model``
(exercising the shape inference at full size), HF with ``from_pretrained``. Each side runs in a fresh child
process (so peak memory is its own): one warm-up forward at 256x512, then ``--repeats`` timed forwards at the
full size with stage times taken from forward hooks (backbone / pixel decoder / transformer decoder; medians
printed), and the peak resident memory of the first timed forward (Linux ``VmHWM`` after resetting it through
``/proc/self/clear_refs``).
The parent prints the ratio maskbench/HF and the max abs difference of the outputs.

On a shared machine the numbers carry the load of other processes (printed); compare the ratios.

    python benchmarks/bench_forward.py [--height 1024 --width 2048] [--threads 2] [--repeats 3] [--msda-backend NAME]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def vm_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return -1


def reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def build_hf_weights(directory: Path, seed: int) -> None:
    import transformers

    backbone = transformers.ResNetConfig(embedding_size=64, hidden_sizes=[256, 512, 1024, 2048], depths=[3, 4, 6, 3],
                                         layer_type="bottleneck", out_features=["stage1", "stage2", "stage3", "stage4"])
    cfg = transformers.Mask2FormerConfig(backbone_config=backbone, num_labels=19, num_queries=100, decoder_layers=10)
    model = transformers.Mask2FormerForUniversalSegmentation(cfg).eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in list(model.named_parameters()) + list(model.named_buffers()):
            if not t.is_floating_point() or name.startswith("criterion."):
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
            elif t.dim() == 1 and "norm" in name and name.endswith("weight"):
                t.copy_(1.0 + torch.randn(t.shape, generator=gen) * 0.1)
            else:
                t.copy_(torch.randn(t.shape, generator=gen) * (0.5 / max(t[0].numel(), 1) ** 0.5 if t.dim() > 1 else 0.1))
    model.save_pretrained(directory)


def worker(args) -> None:
    torch.set_num_threads(args.threads)
    if args.worker == "maskbench":
        from maskbench.model.checkpoint import load_model

        overrides = {"msda_backend": args.msda_backend} if args.msda_backend else {}
        model, report = load_model(args.weights, **overrides)
        assert report.ok, report.problems()
        stages = {"backbone": model.backbone, "pixel_decoder": model.sem_seg_head.pixel_decoder,
                  "decoder": model.sem_seg_head.predictor}
        from maskbench.model.ms_deform_attn import resolve_msda_backend

        backend = resolve_msda_backend(args.msda_backend, torch.device("cpu"))

        def run(x):
            out = model(x)
            return out["pred_logits"], out["pred_masks"]
    else:
        import transformers

        model = transformers.Mask2FormerForUniversalSegmentation.from_pretrained(args.weights).eval()
        stages = {"backbone": model.model.pixel_level_module.encoder,
                  "pixel_decoder": model.model.pixel_level_module.decoder,
                  "decoder": model.model.transformer_module}
        backend = f"transformers {transformers.__version__}"

        def run(x):
            out = model(pixel_values=x)
            return out.class_queries_logits, out.masks_queries_logits

    times: dict[str, float] = {}
    for name, module in stages.items():
        module.register_forward_pre_hook(lambda m, a, name=name: times.__setitem__(name, -time.perf_counter()))
        module.register_forward_hook(lambda m, a, o, name=name: times.__setitem__(name, times[name] + time.perf_counter()))
    gen = torch.Generator().manual_seed(args.seed)
    pixels = torch.randn(1, 3, args.height, args.width, generator=gen)
    runs = []
    with torch.no_grad():
        run(pixels[:, :, :256, :512])  # warm-up: lazy initialisation, allocator
        rss_before = vm_kib("VmRSS")
        peak_reset = reset_peak_rss()
        for i in range(args.repeats):
            start = time.perf_counter()
            logits, masks = run(pixels)
            runs.append({"total": time.perf_counter() - start, **times})
            if i == 0:
                peak = vm_kib("VmHWM")  # of the first timed forward
    torch.save({"logits": logits, "masks": masks}, args.out)
    medians = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    print(json.dumps({**medians, "rss_before_mib": rss_before / 1024, "peak_rss_mib": peak / 1024,
                      "peak_is_forward_only": peak_reset, "backend": str(backend)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--height", type=int, default=1024)
    parser.add_argument("--width", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=1, help="timed forwards per side (medians are printed)")
    parser.add_argument("--msda-backend", default=None, help="maskbench deformable-attention backend (default: auto)")
    parser.add_argument("--worker", choices=["maskbench", "hf"], help=argparse.SUPPRESS)
    parser.add_argument("--weights", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        build_hf_weights(tmp / "weights", args.seed)
        results = {}
        for side in ("maskbench", "hf"):
            cmd = [sys.executable, __file__, "--worker", side, "--weights", str(tmp / "weights"),
                   "--out", str(tmp / f"{side}.pt"), "--height", str(args.height), "--width", str(args.width),
                   "--threads", str(args.threads), "--seed", str(args.seed), "--repeats", str(args.repeats)]
            if args.msda_backend:
                cmd += ["--msda-backend", args.msda_backend]
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
            if proc.returncode:
                sys.exit(f"{side} worker failed:\n{proc.stderr[-3000:]}")
            results[side] = json.loads(proc.stdout.strip().splitlines()[-1])
        ours, ref = (torch.load(tmp / f"{s}.pt") for s in ("maskbench", "hf"))

    load = os.getloadavg()
    print(f"Mask2Former R50 (19 classes, 100 queries, 9 decoder layers), CPU, {args.threads} threads, input "
          f"1x3x{args.height}x{args.width}, fp32, median of {args.repeats} timed forward(s) per side after a 256x512 "
          f"warm-up; "
          f"load average {load[0]:.1f}/{load[1]:.1f} on {os.cpu_count()} cores (shared machine)")
    print(f"maskbench MSDA backend: {results['maskbench']['backend']}; reference: {results['hf']['backend']}")
    print(f"{'stage':<15}{'maskbench s':>12}{'HF s':>10}{'ratio':>8}")
    for stage in ("backbone", "pixel_decoder", "decoder", "total"):
        a, b = results["maskbench"][stage], results["hf"][stage]
        print(f"{stage:<15}{a:>12.2f}{b:>10.2f}{a / b:>8.2f}")
    for side in ("maskbench", "hf"):
        r = results[side]
        scope = "of the first timed forward" if r["peak_is_forward_only"] else "of the whole process"
        print(f"{side}: RSS before forward {r['rss_before_mib']:.0f} MiB, peak RSS {scope} {r['peak_rss_mib']:.0f} MiB")
    print(f"max |maskbench - HF|: pred_logits {(ours['logits'] - ref['logits']).abs().max():.2e}, "
          f"pred_masks {(ours['masks'] - ref['masks']).abs().max():.2e} "
          f"(|pred_masks| max {ref['masks'].abs().max():.2e})")


if __name__ == "__main__":
    main()
