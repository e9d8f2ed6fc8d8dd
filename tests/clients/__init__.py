"""Tests of the clients area."""
