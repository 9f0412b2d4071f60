"""Templates of the files `python -m runtime env init NAME` writes (kept as Python strings, so
they ship with the package)."""
