"""Serving data to other platforms through the data-sharing gateway (X-Road style)."""
