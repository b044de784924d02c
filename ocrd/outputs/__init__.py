"""The output set of a job: atomic writers for JSON, text and the visualization, and drawing it.

Every file is written under a temporary name, fsynced and renamed, the JSON last (its presence marks
a complete set); output names never collide with another file's. Ships the result JSON Schema
(`schema/result-v1.json`). It may import `ocrd.engine.results` (what it writes), `ocrd.config` and
`ocrd.durable`; it uses OpenCV (imported lazily) to draw and encode, and imports no other library.
"""
