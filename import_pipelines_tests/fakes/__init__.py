"""Fakes of network services the tests cannot reach, served on 127.0.0.1 for the real clients."""
