"""Delivering outbox events to their targets: workflow webhooks now, subscriptions later."""
