"""The OCR engine: a page image in, text lines with boxes out; never sees a path, a job or the job log.

Holds the model sets (locating and verifying shipped files), the one ONNX Runtime session wrapper,
the three stages (detect, classify, recognize: pre-process, model, post-process), the geometry of
boxes and crops, the result objects and `OcrEngine`, which composes them; `int8/` derives, caches
and verifies the INT8 recognizer. It may import `ocrd.config` and the top-level `errors`, `logs`,
`durable` and `cpus`. It is the only importer of `onnxruntime`, `onnx` (the INT8 build) and
`pyclipper` (box unclipping); it uses OpenCV for pixel work but never decodes untrusted bytes.
"""
