"""The AWS emulator the end-to-end tests apply the stack to: moto's server on 127.0.0.1, with the
project's version-pinned EKS fidelity extension (``moto_plus``) applied, started and always
stopped by ``server``. Nothing here talks to any address but 127.0.0.1."""
