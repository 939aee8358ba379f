"""The web side of `suan server`: the offline OpenAPI docs and the dashboard."""
