"""Digital signatures at workflow steps: the provider hook, what is signed, and verification."""
