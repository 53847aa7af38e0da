"""One adapter per system under test; ``ADAPTERS`` maps a system name to its module and class."""

ADAPTERS = {
    "taskengine-sqlite": ("bench.peers.taskengine_peer", "TaskengineSqlite"),
    "taskengine-postgresql": ("bench.peers.taskengine_peer", "TaskenginePostgres"),
    "celery": ("bench.peers.celery_peer", "CeleryAdapter"),
    "dramatiq": ("bench.peers.dramatiq_peer", "DramatiqAdapter"),
    "rq": ("bench.peers.rq_peer", "RqAdapter"),
    "huey": ("bench.peers.huey_peer", "HueyAdapter"),
    "procrastinate": ("bench.peers.procrastinate_peer", "ProcrastinateAdapter"),
    "pgqueuer": ("bench.peers.pgqueuer_peer", "PgqueuerAdapter"),
}
