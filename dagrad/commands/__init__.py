"""Sub-commands of `dagrad` implemented in their own modules: each has `run(args) -> int`."""
