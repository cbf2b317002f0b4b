"""Records -> tables and plots: runs (reading), frames (pandas), selection (DomainBed's model selection),
report (tables), plots (figures). Everything is computed from record files."""
