"""Runs the whole fleet on one machine (`make run`) and in the test suite."""
