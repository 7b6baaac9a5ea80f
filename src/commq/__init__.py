"""commq: a durable communication queue."""
