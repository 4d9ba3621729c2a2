"""Multiprocess metrics keep one file per process (metrics.py caches the pid for prometheus-client,
refreshed in a forked child): a child forked after the metrics exist writes to a file of its own,
and the parent's values are not overwritten by the child's."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap


def test_a_forked_child_writes_its_own_metrics_file(tmp_path):
    script = textwrap.dedent("""
        import os, sys
        from engine.service import metrics
        metrics.LOG_WRITTEN.inc(5)
        child = os.fork()
        if child == 0:
            metrics.LOG_WRITTEN.inc(2)
            os._exit(0)
        os.waitpid(child, 0)
        print(os.getpid(), child)
    """)
    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    parent, child = done.stdout.split()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert f"counter_{parent}.db" in files and f"counter_{child}.db" in files, files
    from prometheus_client import CollectorRegistry, multiprocess
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(tmp_path))
    assert registry.get_sample_value("aftersale_decision_log_writes_total") == 7
