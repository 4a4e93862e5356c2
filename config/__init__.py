"""The bottom layer: the hand-edited sources file, durations, where the project's files live, and
credential redaction. Imports nothing else of the project."""
