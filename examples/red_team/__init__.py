"""Red-team suites per app and the canned model the example runs them against."""
