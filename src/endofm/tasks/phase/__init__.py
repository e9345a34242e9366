"""The ``phase`` task: surgical phase recognition over whole procedures (a temporal model on
window features), its metrics and the scoring of prediction files."""

from endofm.tasks.registry import TaskSpec, register_task

SPEC = register_task(TaskSpec(
    name="phase",
    kind="phase_model",
    task="endofm.tasks.phase.task:PhaseTask",
    summary="surgical phase recognition (a temporal model on window features)",
    formats=("cholec80", "autolaparo", "segments"),
    cli="endofm.cli.phase",  # two stages, prediction files to score: its own options
    live="endofm.deploy.live_phase:build_phase_live",
    sample="endofm.data.phase.synth:sample_procedures",
))
