"""The `suan` command."""
