"""Cases (hồ sơ): a submission moving through the workflow its form binds to."""
