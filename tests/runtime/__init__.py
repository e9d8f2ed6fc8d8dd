"""Tests of the runtime area."""
