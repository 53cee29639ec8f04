"""The sandbox's smallest sizes, importable without the heavy seeding modules (the CLI needs
them for its option ranges before anything is seeded)."""

MIN_USERS = 50
MIN_REQUESTS = 200
DEFAULT_REQUESTS = 3000
