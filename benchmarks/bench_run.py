"""`bench run`: one shared forward for every scorer vs one forward per scorer (how the reference repos evaluate).

Run from the repository root:  python benchmarks/bench_run.py [--frames 2] [--size 256x512] [--queries 100]

The reference evaluators (RbA ``evaluate_ood.py``, Mask2Anomaly ``anomaly_inference.py``, Open-set-M2F) run the
network once per method. Here both ways run side by side on the same replica frames with a random-weight R50
Mask2Former (reduced widths, real layout) written as a checkpoint and loaded through ``maskbench.model``:

* shared: one `run_benchmark` with all six scorers (one forward per frame);
* per scorer: six `run_benchmark` calls with one scorer each (six forwards per frame).

Metrics of the two ways are checked identical, then seconds per frame and the speed-up are printed. A real
Swin-L forward costs far more than this reduced one, so the speed-up on real checkpoints is larger.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from maskbench.benchmark.run import RunConfig, run_benchmark  # noqa: E402
from maskbench.datasets.replica import make  # noqa: E402
from maskbench.model import Mask2FormerConfig, build_model_with_backbone  # noqa: E402
from maskbench.model.resnet import ResNet  # noqa: E402

SCORERS = ("msp", "rba", "eam", "aem", "maskomaly", "mask2anomaly")


def write_checkpoint(path, queries):
    cfg = Mask2FormerConfig(backbone="resnet", num_classes=19, num_queries=queries, dec_layers=9, hidden_dim=64,
                            nheads=8, dim_feedforward=256, conv_dim=64, mask_dim=64, enc_layers=2, enc_nheads=8,
                            enc_dim_feedforward=256)
    model = build_model_with_backbone(cfg, ResNet(depth=50, norm="FrozenBN", stem_channels=32, res2_channels=64))
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, t in list(model.named_parameters()) + list(model.named_buffers()):
            if t.is_floating_point():
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5 if name.endswith("running_var")
                        else torch.randn(t.shape, generator=gen) * 0.2)
    torch.save(model.state_dict(), path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=2)
    parser.add_argument("--size", default="256x512", help="frame size HxW")
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args()
    h, w = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        root = make("smiyc-ra21", tmp / "data", frames=args.frames, seed=0, size=(h, w)).root
        checkpoint = tmp / "model.pth"
        write_checkpoint(checkpoint, args.queries)

        def run(out, scorers):
            config = RunConfig(dataset="smiyc-ra21", root=root, out=tmp / out, scorers=scorers, checkpoint=checkpoint,
                               save_maps=0, workers=1, command=["bench_run.py"])
            start = time.perf_counter()
            results = run_benchmark(config)
            return time.perf_counter() - start, {e["scorer"]: e["metrics"] for e in results["results"]}

        run("warm-up", ("msp",))  # numba compilation and first-touch costs out of the measurement
        shared_s, shared = run("shared", SCORERS)
        separate_s, separate = 0.0, {}
        for name in SCORERS:
            seconds, metrics = run(f"only-{name}", (name,))
            separate_s += seconds
            separate.update(metrics)
    assert shared == separate, "a scorer's metrics depend on the other scorers of the run"
    n = args.frames
    print(f"{n} frames {h}x{w}, {args.queries} queries, {len(SCORERS)} scorers, torch threads {torch.get_num_threads()}; "
          "metrics identical both ways (protocol smiyc-anomaly)")
    print(f"  one forward per scorer (reference repos): {separate_s / n:8.3f} s/frame")
    print(f"  one shared forward (bench run):          {shared_s / n:8.3f} s/frame")
    print(f"  speed-up: {separate_s / shared_s:.2f}x")


if __name__ == "__main__":
    main()
