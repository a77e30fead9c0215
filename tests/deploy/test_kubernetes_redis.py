"""The Redis pods' start script (deploy/kubernetes/redis-configmap.yaml, init.sh), run by `sh`
with a stand-in `redis-cli` that answers as the running sentinels would.

The pitfall it guards against: after a failover, a restarted redis-0 that starts as master from
its own older data splits the data set. The master must be whoever the sentinels name."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.test_kubernetes import KUBE

pytestmark = pytest.mark.integration

DOMAIN = "redis-headless.sealion.svc.cluster.local"
NO_SENTINEL = "Could not connect to Redis at {host}:26379: Connection refused"


def run_init(tmp_path: Path, pod: str, answer: str | None) -> tuple[str, str, list[str]]:
    """Run init.sh as pod `pod`; every sentinel asked answers `answer` (two lines, as
    `redis-cli --raw` prints an address), or none answers (None). Returns redis.conf,
    sentinel.conf and the sentinels asked."""
    script = yaml.safe_load((KUBE / "redis-configmap.yaml").read_text())["data"]["init.sh"]
    (tmp_path / "init.sh").write_text(script)
    bin_dir, conf = tmp_path / "bin", tmp_path / "conf"
    bin_dir.mkdir()
    conf.mkdir()
    asked = tmp_path / "asked"
    stub = bin_dir / "redis-cli"
    if answer is None:
        body = f'echo "{NO_SENTINEL}" >&2\nexit 1\n'
    else:
        body = f"printf '%s\\n' {answer}\n"
    # Records "<host> <command...>" of each call; the password comes through REDISCLI_AUTH.
    stub.write_text('#!/bin/sh\nhost=""\nwhile [ $# -gt 0 ]; do\n'
                    '  case "$1" in -h) host="$2"; shift 2;; -p) shift 2;; --*) shift;;'
                    ' *) break;; esac\ndone\n'
                    f'echo "$host $REDISCLI_AUTH $*" >> {asked}\n' + body)
    stub.chmod(0o755)
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "POD_NAME": pod,
           "POD_NAMESPACE": "sealion", "MASTER_NAME": "mymaster", "CONF_DIR": str(conf),
           "REDIS_PASSWORD": "data-pass", "REDIS_SENTINEL_PASSWORD": "sentinel-pass"}
    done = subprocess.run([shutil.which("sh") or "/bin/sh", str(tmp_path / "init.sh")],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    calls = asked.read_text().splitlines() if asked.exists() else []
    return ((conf / "redis.conf").read_text(), (conf / "sentinel.conf").read_text(), calls)


def test_a_restarted_redis_0_follows_the_master_the_sentinels_name(tmp_path):
    redis_conf, sentinel_conf, asked = run_init(
        tmp_path, "redis-0", f"redis-2.{DOMAIN} 6379")
    assert f"replicaof redis-2.{DOMAIN} 6379" in redis_conf.splitlines()
    assert f"sentinel monitor mymaster redis-2.{DOMAIN} 6379 2" in sentinel_conf.splitlines()
    # Asked another pod's sentinel (its own is not running yet), with the sentinel password.
    assert asked == [f"redis-1.{DOMAIN} sentinel-pass "
                     "SENTINEL get-master-addr-by-name mymaster"]
    assert f"replica-announce-ip redis-0.{DOMAIN}" in redis_conf.splitlines()
    assert 'masterauth "data-pass"' in redis_conf.splitlines()
    assert 'requirepass "sentinel-pass"' in sentinel_conf.splitlines()


def test_the_first_start_makes_redis_0_the_master(tmp_path):
    redis_conf, sentinel_conf, asked = run_init(tmp_path, "redis-0", None)
    assert not [line for line in redis_conf.splitlines() if line.startswith("replicaof")]
    assert f"sentinel monitor mymaster redis-0.{DOMAIN} 6379 2" in sentinel_conf.splitlines()
    assert [line.split()[0] for line in asked] == [f"redis-1.{DOMAIN}", f"redis-2.{DOMAIN}"]


def test_the_others_start_as_replicas_of_redis_0(tmp_path):
    redis_conf, _, _ = run_init(tmp_path, "redis-2", None)
    assert f"replicaof redis-0.{DOMAIN} 6379" in redis_conf.splitlines()


def test_an_error_from_a_sentinel_is_not_taken_for_a_master(tmp_path):
    redis_conf, _, asked = run_init(tmp_path, "redis-1", "'NOAUTH Authentication required.'")
    assert f"replicaof redis-0.{DOMAIN} 6379" in redis_conf.splitlines()
    assert len(asked) == 2


def test_the_configs_are_private(tmp_path):
    run_init(tmp_path, "redis-0", None)
    for name in ("redis.conf", "sentinel.conf"):
        assert (tmp_path / "conf" / name).stat().st_mode & 0o077 == 0, name
