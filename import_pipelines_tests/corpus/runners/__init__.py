"""One module per kind of corpus input; each registers its runner with ``loader.runner``."""
