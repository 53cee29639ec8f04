"""Real servers on loopback for the tests, each a pytest fixture module (see tests/conftest.py)."""
