"""OnnxModel: one onnxruntime InferenceSession with its thread settings; the only importer of onnxruntime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort


class OnnxModel:
    """A loaded ONNX model with a single input and a single (first) output.

    One session per process: sessions are not shared across fork boundaries, and
    intra-op threads are set explicitly so that workers x threads fit the cores.
    """

    def __init__(self, path: Path, *, intra_op_threads: int = 1):
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, int(intra_op_threads))
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Input shapes change with every page and crop; the memory arena would keep
        # the largest buffer ever seen per shape bucket and grow for hours (what the
        # C allocator keeps instead is ocrd.service.allocator's concern).
        options.enable_cpu_mem_arena = False
        options.log_severity_level = 3
        self.path = Path(path)
        self._session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        self._input_name = self._session.get_inputs()[0].name
        self._output_name = self._session.get_outputs()[0].name
        self.input_shape = tuple(self._session.get_inputs()[0].shape)

    @property
    def metadata(self) -> dict[str, str]:
        return dict(self._session.get_modelmeta().custom_metadata_map)

    def run(self, batch: np.ndarray) -> np.ndarray:
        return self._session.run([self._output_name], {self._input_name: batch})[0]
