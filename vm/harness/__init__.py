"""Host-side harness: fetch the base, check configs, judge test results."""
