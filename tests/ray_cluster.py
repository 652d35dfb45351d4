"""A real Ray cluster on loopback for the Ray executor's tests, started once per test session.

``RayCluster.start()`` starts a head node with two CPUs (``ray.cluster_utils.Cluster``: the same processes
``ray start --head`` runs, started as children of the test process, in a temporary folder of their own,
without the dashboard or usage stats) and connects this process to it. ``add_node`` adds a second node for
the tests of what a multi-node cluster refuses; ``stop`` ends every process the cluster started.

The tests folder is on the workers' ``PYTHONPATH``, as a project's installed code would be on a real
cluster, so steps defined in the test modules import on the workers by ``module:qualname``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

TESTS = Path(__file__).resolve().parent


class RayCluster:
    """A running local cluster: its ``address`` is what ``[executor] address`` names."""

    def __init__(self, cluster: Any, temp_dir: str, environ: dict[str, str | None]) -> None:
        self._cluster = cluster
        self.temp_dir = temp_dir
        self._environ = environ  # the variables start() changed, with their values before
        self.address: str = cluster.address

    @classmethod
    def start(cls) -> RayCluster:
        # Ray keeps its sessions, sockets and the address of "the cluster on this machine" under RAY_TMPDIR (else
        # /tmp/ray, shared by every user of the machine); its socket paths must stay short, so not under tmp_path.
        temp_dir = tempfile.mkdtemp(prefix="egray-", dir="/tmp")
        changed = {
            "RAY_TMPDIR": temp_dir,
            # Ray rewrites a loopback address given to ray.init into the machine's network address, where a head
            # bound to 127.0.0.1 does not answer, unless it is told this machine is all there is (read when
            # ray is first imported, which is below).
            "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
            "RAY_USAGE_STATS_ENABLED": "0",
            "PYTHONPATH": os.pathsep.join([str(TESTS), *filter(None, [os.environ.get("PYTHONPATH")])]),
        }
        environ = {name: os.environ.get(name) for name in changed}
        os.environ.update(changed)
        try:
            from ray.cluster_utils import Cluster  # after RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER is set

            cluster = Cluster(
                initialize_head=True,
                head_node_args={
                    "num_cpus": 2,
                    "include_dashboard": False,
                    "object_store_memory": 100 * 1024 * 1024,
                    "node_ip_address": "127.0.0.1",
                },
            )
        except BaseException:
            _restore(environ)
            shutil.rmtree(temp_dir, ignore_errors=True)
            raise
        return cls(cluster, temp_dir, environ)

    @contextmanager
    def second_node(self) -> Iterator[None]:
        """The cluster with a second node (one CPU) while the block runs."""
        node = self._cluster.add_node(num_cpus=1, object_store_memory=75 * 1024 * 1024, node_ip_address="127.0.0.1")
        self._cluster.wait_for_nodes()
        try:
            yield
        finally:
            self._cluster.remove_node(node)

    def stop(self) -> None:
        """Disconnect this process and end every process of the cluster."""
        import ray

        try:
            ray.shutdown()
            self._cluster.shutdown()
        finally:
            _restore(self._environ)
            shutil.rmtree(self.temp_dir, ignore_errors=True)


def _restore(environ: dict[str, str | None]) -> None:
    for name, value in environ.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
