"""The ``phase`` task: surgical phase recognition over whole procedures (a temporal model on
window features), its metrics and the scoring of prediction files."""
