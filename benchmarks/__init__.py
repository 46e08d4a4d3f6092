"""Throughput benchmarks: Nentang's full request path against a bare FastAPI + asyncpg floor."""
