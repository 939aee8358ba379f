"""The control plane: store, REST API, reconciler loop and authentication.

Import the parts you need (`suan.control.store`, `suan.control.api`, ...); this package imports
nothing heavy by itself so that `import suan` stays light.
"""
