"""eForms: definitions, versions, inheritance and submissions."""
