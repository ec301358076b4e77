"""Benchmarks of the ELT at scale; not part of the installed package (run from the project folder)."""
