"""Device discovery and health, per vendor: each vendor's own tool or library is read, its
output parsed into `DeviceReading`s, and each signal judged against the catalog's severity
table. Nothing here imports a vendor library at import time."""
