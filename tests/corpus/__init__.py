"""Tests of the corpus area."""
