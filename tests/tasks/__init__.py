"""The taskiq jobs (``yeastar_csss_async.tasks``) with a real redis-server and worker processes."""
