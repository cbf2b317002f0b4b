"""A run's records: the JSONL file (files), the shape each line must have (schema), numbers read back from
lines (values), and facts about evaluation metrics (metrics)."""
