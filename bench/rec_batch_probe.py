"""Probe: cost per line of ocrd's recognizer model against batch size and line width (1 thread, random input).

Usage: python bench/rec_batch_probe.py      (about 20 s; prints ms per line, best of 5)
"""
import time, numpy as np
from ocrd.config.load import load_config
from ocrd.engine.ocr_engine import model_set_from_config
from ocrd.engine.runtime import OnnxModel
ms = model_set_from_config(load_config(None))
m = OnnxModel(ms.rec.path, intra_op_threads=1)
rng = np.random.default_rng(0)
for w in (160, 480):
    for b in (1, 2, 6, 12):
        x = rng.random((b, 3, 48, w), dtype=np.float32)
        m.run(x)
        t = []
        for _ in range(5):
            t0 = time.perf_counter(); m.run(x); t.append(time.perf_counter() - t0)
        print(f"width {w} batch {b}: {min(t)*1000/b:.1f} ms per line")
