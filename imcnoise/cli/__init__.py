"""The ``imcnoise`` command line (typer): thin, parses and validates flags and calls the library.

May import every other sub-package; nothing imports it.
"""
