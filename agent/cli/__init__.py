"""The llmos command line."""
