"""Machinery shared by every layer: argument checks, atomic files, the BLAS thread count."""
