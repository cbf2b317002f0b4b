"""Small shared utilities with no dagrad dependencies of their own: errors shown as one line, crash-safe
writes, plain JSON, stable seeds, bounded YAML, warnings shown once, passive threads, lazy imports."""
