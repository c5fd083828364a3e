"""X2: the local cluster's own settings (``scripts/cluster_stack.py``): the load balancer's
configuration is one HAProxy accepts, and the parts of a cluster never share a port."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import cluster_stack  # noqa: E402
import demo_stack  # noqa: E402


def test_haproxy_accepts_the_configuration(tmp_path):
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    config = tmp_path / "haproxy.cfg"
    config.write_text(cluster_stack.haproxy_config(7100, [7102, 7104]))
    checked = subprocess.run([haproxy, "-c", "-f", str(config)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    text = config.read_text()
    # every node health-checked with a Host header (Odoo answers 500 without one)
    assert text.count("hdr Host") == 2
    assert "server node1 127.0.0.1:7102 check" in text
    assert "server node2 127.0.0.1:7105 check port 7104" in text  # the websocket


def test_the_parts_of_a_cluster_take_ports_of_their_own(monkeypatch, tmp_path):
    monkeypatch.setenv("CLUSTER_BASE_PORT", "7100")
    monkeypatch.setenv("CLUSTER_PG_PORT", "56100")
    monkeypatch.setenv("CLUSTER_DIR", str(tmp_path))
    cluster = cluster_stack.Cluster.from_environment()
    ports = [cluster.http_port, cluster.broker_port, cluster.primary.port, cluster.replica.port]
    ports += [cluster.node_port(name) + i for name in cluster.node_names() for i in (0, 1)]
    buses = demo_stack.COLLECTORS * demo_stack.BUSES
    ports += range(cluster.sim_base_port, cluster.sim_base_port + buses)
    assert len(set(ports)) == len(ports)
    assert all(7100 <= port < 7200 or 56100 <= port < 56200 for port in ports)
    assert cluster.local == tmp_path and cluster.workers == 2
