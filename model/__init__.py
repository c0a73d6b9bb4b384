"""What the platform is, as data: each layer's typed config, the version knowledge and the pure
helpers the layers use (subnet planning, derived names, Kubernetes manifests).

Nothing here loads the provider bindings or the jsii kernel, so a config error is reported at once.
Imports point one way: ``main.py`` -> ``stacks/`` -> ``constructs/`` -> ``model/``.
"""
