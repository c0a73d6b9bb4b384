"""Stacks: the platform stack (backend, providers, layer wiring, outputs) and its configuration."""

from stacks import bootstrap as _bootstrap

_bootstrap.prepare()
