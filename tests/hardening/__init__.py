"""Self-protection: hostile input, hostile requests, patterns and outside text."""
