"""OnnxModel: one onnxruntime InferenceSession with its thread settings; the only importer of onnxruntime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort


class OnnxModel:
    """A loaded ONNX model with a single input and a single (first) output.

    One session per process: sessions are not shared across fork boundaries, and
    intra-op threads are set explicitly so that workers x threads fit the cores.
    `alone_threads` above `intra_op_threads` adds a second session with that many threads, used while
    `alone` is set: a job that has the machine to itself (an idle daemon's one page) uses every core.
    """

    def __init__(self, path: Path, *, intra_op_threads: int = 1, alone_threads: int = 0):
        self.path = Path(path)
        self._session = self._open(intra_op_threads)
        # Its threads sleep when idle instead of spinning, so that a second job started meanwhile shares
        # the cores (measured: two workers with two spinning threads each read 42 % fewer receipts a minute).
        self._alone_session = self._open(alone_threads, spin=False) if alone_threads > intra_op_threads else None
        self.alone = False
        self._input_name = self._session.get_inputs()[0].name
        self._output_name = self._session.get_outputs()[0].name
        self.input_shape = tuple(self._session.get_inputs()[0].shape)

    def _open(self, threads: int, *, spin: bool = True) -> ort.InferenceSession:
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, int(threads))
        if not spin:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Input shapes change with every page and crop; the memory arena would keep
        # the largest buffer ever seen per shape bucket and grow for hours (what the
        # C allocator keeps instead is ocrd.service.allocator's concern).
        options.enable_cpu_mem_arena = False
        options.log_severity_level = 3
        return ort.InferenceSession(str(self.path), sess_options=options, providers=["CPUExecutionProvider"])

    @property
    def metadata(self) -> dict[str, str]:
        return dict(self._session.get_modelmeta().custom_metadata_map)

    def run(self, batch: np.ndarray) -> np.ndarray:
        session = self._alone_session if self.alone and self._alone_session is not None else self._session
        return session.run([self._output_name], {self._input_name: batch})[0]
