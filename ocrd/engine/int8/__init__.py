"""The INT8 recognizer: the recipe's identity, the verified cache, and the build in a child process.

`recipe` names what a build is; `cache` finds, verifies and (through a spawned child) builds the
copy and falls back to FP32; `build` is what that child runs (calibration, quantization, the
agreement gate). It may import the rest of `ocrd.engine` and what the engine may import.
"""
