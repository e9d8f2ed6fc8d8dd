"""Tests of the serving area."""
