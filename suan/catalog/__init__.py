"""Accelerator catalog: every accelerator type is data, never an `if vendor == ...` branch.

`load_catalog()` returns the built-in catalog (`accelerators.yaml` beside this file) merged
with the operator's own files (`SUAN_CATALOG` paths, or `extra_paths`).
"""

from suan.catalog.loader import default_catalog, load_catalog
from suan.catalog.model import AcceleratorType, AllocationRule, Catalog

__all__ = ["AcceleratorType", "AllocationRule", "Catalog", "default_catalog", "load_catalog"]
