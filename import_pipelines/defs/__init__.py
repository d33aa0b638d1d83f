"""Definitions folder: one sub-folder per concern, loaded by ``dg.load_defs``."""
