"""The resources hanging off a client, one module per part of the API."""
