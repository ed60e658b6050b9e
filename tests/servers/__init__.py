"""Real servers for the tests (PostgreSQL, Redis, SeaweedFS S3), started on 127.0.0.1.

Each module starts one kind of server on free ports in a temporary folder. When
the server's program is missing, its tests fail in CI (`CI` is set) and are
skipped elsewhere, so that a developer without it can still run the rest.
"""
