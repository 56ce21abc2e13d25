"""The analysis core: profiles and classification, homes, the walking network, snapping, the
exact access engine (numba kernels) and coverage. Imports nothing above it."""
