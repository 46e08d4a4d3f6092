"""Workflow definitions, cases and SLA calendars."""
