"""``RedisCoordinator`` (``yeastar_csss_async.redis``) and fleets of processes sharing it."""
