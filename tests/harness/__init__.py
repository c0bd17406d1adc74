"""The test harness's own services: the throwaway PostgreSQL server of ``tests/_support``."""
