"""ocrd: an OCR daemon that turns scans dropped into folders into text (package root; no side effects)."""

__version__ = "0.1.0"
