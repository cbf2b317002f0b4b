"""What an experiment is: the config schema (schema), YAML files and overrides (files), and the config
checked against the registries, each component resolved once (experiment)."""
