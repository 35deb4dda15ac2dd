"""Shared test helpers: the repo root on sys.path so tests import the packages as the CLI does."""
