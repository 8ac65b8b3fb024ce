"""Workflow definitions only: deterministic code, no I/O. The list the worker registers is
``workflows.registry.ALL_WORKFLOWS``."""
