"""Local launcher: the three services as plain processes, the same commands docker-compose runs."""
