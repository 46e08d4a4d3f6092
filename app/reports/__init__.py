"""Self-service reports over eForm submissions: saved definitions, run in the database."""
