"""Stacks: the platform stack (backend, providers, layer wiring, outputs), its configuration models,
the state-bootstrap stack and the diagram tool. Modules that build constructs call
``stacks.bootstrap.prepare()`` before importing any layer or provider binding."""
