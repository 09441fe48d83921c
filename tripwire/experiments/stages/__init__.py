"""The stages of an experiment, one module per pipeline, and what they share (`base`)."""
