"""Real processes for tests and the benchmark: a private redis-server, the backend, the generator.

Development support only: the product never imports it (and the Docker image does not ship it).
"""
