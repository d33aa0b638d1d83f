"""Authoring: the source's catalogue as an asset, with a connection check."""
