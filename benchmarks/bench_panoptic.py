"""PQ speed: maskbench's vectorised per-image matching vs a literal transcription of panopticapi's loop.

Both run side by side in one process on the same synthetic COCO-sized panoptic images (480 x 640, ~40
segments): first the matching alone on decoded id maps, then the whole file pipeline (PNG decode included;
panopticapi reads PNGs the same way, single process here). The literal reference is the one the tests use
(tests/metrics/panoptic/conftest.py). Usage: python benchmarks/bench_panoptic.py [n_images]
"""

import importlib.util
import pathlib
import sys
import tempfile
import time

import numpy as np

from maskbench.metrics.panoptic import PanopticQuality
from maskbench.metrics.panoptic_files import pq_compute_files, read_panoptic_png

ROOT = pathlib.Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("panoptic_reference", ROOT / "tests/metrics/panoptic/conftest.py")
reference = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(reference)

CATEGORIES = [{"id": i, "name": f"thing{i}", "isthing": 1} for i in range(1, 41)] + [
    {"id": i, "name": f"stuff{i}", "isthing": 0} for i in range(100, 120)]


def best_of(repeats, func):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        value = func()
        times.append(time.perf_counter() - start)
    return min(times), value


def main(n_images=20):
    rng = np.random.default_rng(0)
    images = [reference.random_panoptic_image(rng, CATEGORIES, shape=(480, 640), n_gt=40, crowd_p=0.05)
              for _ in range(n_images)]

    def fast():
        quality = PanopticQuality(CATEGORIES)
        for image in images:
            quality.update(*image)
        return quality.compute()

    t_fast, ours = best_of(3, fast)
    t_ref, theirs = best_of(3, lambda: reference.literal_pq(CATEGORIES, images))
    assert abs(ours["All"]["pq"] - theirs["All"]["pq"]) < 1e-12
    print(f"matching only, {n_images} images 480x640: literal panopticapi {t_ref:.3f} s, "
          f"maskbench {t_fast:.3f} s, speed-up x{t_ref / t_fast:.1f}")

    with tempfile.TemporaryDirectory() as tmp:
        paths = reference.write_dataset(pathlib.Path(tmp), CATEGORIES,
                                        [(i + 1, *image) for i, image in enumerate(images)])
        gt_dir, pred_dir = pathlib.Path(paths[1]), pathlib.Path(paths[3])

        def reference_files():
            loaded = [(read_panoptic_png(gt_dir / f"{i + 1:06d}.png"), image[1],
                       read_panoptic_png(pred_dir / f"{i + 1:06d}.png"), image[3]) for i, image in enumerate(images)]
            return reference.literal_pq(CATEGORIES, loaded)

        t_files, ours = best_of(3, lambda: pq_compute_files(*paths))
        t_ref_files, theirs = best_of(3, reference_files)
        assert abs(ours["All"]["pq"] - theirs["All"]["pq"]) < 1e-12
        print(f"files (PNG decode included), 1 process: literal panopticapi {t_ref_files:.3f} s, "
              f"maskbench {t_files:.3f} s, speed-up x{t_ref_files / t_files:.1f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
