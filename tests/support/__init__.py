"""Test support: helpers shared by tests and benchmarks that are not fakes."""
