"""The tenant tree: ministries, provinces, communes and agencies, and the isolation between them."""
