"""Tests of the export area."""
