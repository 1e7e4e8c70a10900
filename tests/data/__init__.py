"""The monitored PostgreSQL and Redis commands against the real servers."""
