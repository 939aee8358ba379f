"""Suan (算): an operating system for AI supercomputers.

The public surface is small; most users reach Suan through the `suan` command.
"""

__version__ = "0.1.0"
