"""The `slurm` launcher's options (the sweep's `launcher:` block), declared apart from the launcher so the
registry can list and check them without submitit installed."""

from __future__ import annotations

from dagrad.registry import Option

SLURM_OPTIONS = {
    "cluster": Option("slurm", str, "where tasks run: slurm, or local / debug to try the setup on this machine",
                      choices=("slurm", "local", "debug")),
    "partition": Option(None, str, "Slurm partition", nullable=True),
    "account": Option(None, str, "Slurm account", nullable=True),
    "qos": Option(None, str, "Slurm quality of service", nullable=True),
    "constraint": Option(None, str, "Slurm node constraint (e.g. a GPU model)", nullable=True),
    "exclude": Option(None, str, "nodes to leave out", nullable=True),
    "timeout_min": Option(1440, int, "time limit of one task, in minutes (a task requeues itself at the limit)",
                          low=1),
    "nodes": Option(1, int, "nodes per task (a job spans them all when tasks_per_node x nodes > 1)", low=1),
    "tasks_per_node": Option(1, int, "processes per node; each job trains on all of them (one GPU each)", low=1),
    "gpus_per_node": Option(1, int, "GPUs per node", low=0),
    "cpus_per_task": Option(8, int, "CPUs per process; also its torch threads unless --threads is given", low=1),
    "mem_gb": Option(None, float, "memory per node in GB (null: the partition's default)", low=0.0, low_open=True,
                     nullable=True),
    "array_parallelism": Option(256, int, "array tasks running at once", low=1),
    "jobs_per_task": Option(1, int, "sweep jobs one array task runs, one after another", low=1),
    "setup": Option([], list, "shell lines run before the task (e.g. module load cuda)", item=str),
    "signal_delay_s": Option(120, int, "seconds before the time limit at which the task is told to requeue",
                             low=1),
    "max_timeouts": Option(10, int, "requeues after reaching the time limit (preemptions are not counted)",
                           low=0),
    "exclusive": Option(False, bool, "whole nodes (RAPL energy then counts the node, not a CPU-time share)"),
    "additional": Option({}, dict, "more sbatch options, e.g. {mail-type: END}"),
    "folder": Option(None, str, "submitit's folder for task logs (default: <sweep folder>/.submitit)",
                     nullable=True),
    "python": Option(None, str, "the python command on the nodes (default: this interpreter)", nullable=True),
    "wait": Option(False, bool, "follow the tasks until they end instead of returning after submission"),
    "poll_s": Option(60.0, float, "seconds between two looks at the tasks when waiting", low=0.0, low_open=True),
}
