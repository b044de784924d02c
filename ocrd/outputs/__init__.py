"""The output set of a job: atomic writers for JSON, text, the visualization, the searchable PDF (PDF/A-2b when asked), hOCR and ALTO.

Every file is encoded first, then written under a temporary name, fsynced and renamed, the JSON
last (its presence marks a complete set); output names never collide with another file's. Ships
the result JSON Schema (`schema/result-v1.json`). It may import `ocrd.engine.results` (what it
writes), `ocrd.errors`, `ocrd.config` and `ocrd.durable`; it uses OpenCV (imported lazily) to draw
and encode. It owns `pikepdf` (qpdf: builds the PDFs, rewrites input PDFs, validates PDF/A; loaded
only by workers) and `fontTools` (builds the text layer's glyphless font).
"""
