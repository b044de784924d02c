"""Configuration: the frozen settings with their built-in defaults, and reading and validating a file.

Holds the value rules (how one key is checked and described), the settings dataclasses (every key
and its default) and the loader (YAML, strict: unknown keys and bad values are reported with their
key path). It may import `ocrd.errors` only; it is the only importer of `yaml`.
"""
