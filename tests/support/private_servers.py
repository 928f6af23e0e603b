"""Private servers for the fault suite: a RabbitMQ node, a three-node RabbitMQ cluster and a
PostgreSQL cluster of the suite's own, on other ports, so that killing or restarting them
disturbs no one else on the machine.

    with private_rabbitmq() as node:        # node.amqp_url, node.ctl("list_queues"), node.kill()
    with private_rabbitmq_cluster() as c:   # c.amqp_url (a proxy in front of the live nodes)
    with private_postgres() as pg:          # pg.url("postgres"), pg.stop(), pg.start()

RabbitMQ (Debian's 3.10 here): each node is `rabbitmq-server` run in the foreground (its script
forks `erl` and waits for it) with its own node name `fault-<rand>@localhost`, AMQP port P and
distribution port P + 20000 (3.10's default; setting RABBITMQ_DIST_PORT explicitly makes its own
pre-launch check fail with `dist_port_already_used` on itself), its own mnesia, log and pid
file in a temporary directory, a config file with only the listener, an env file of its own (so
/etc/rabbitmq/rabbitmq-env.conf's NODENAME does not apply) and an enabled-plugins file that
enables nothing (no management port to clash). HOME points at the temporary directory, which
holds an Erlang cookie of the suite's own: neither the nodes nor their `rabbitmqctl` can even
talk to the shared node `rabbit@localhost`. They do register their names with the machine's
shared epmd (port 4369), as every node does.

A crash is `kill -9` of the node's beam process (its pid file). The cluster's nodes are joined
with `rabbitmqctl join_cluster`; quorum queues then get one replica on each of the three nodes
(3.10's default initial group size is the cluster size). Clients and services reach the cluster
through `AmqpProxy`, a TCP proxy in a thread of its own that sends each new connection to the
first node that accepts it: when a node dies, the connections it carried drop and reconnect
(aio-pika's robust connections do) through the proxy to a surviving node, as they would through
a load balancer in production. `node_url(i)` bypasses the proxy.

PostgreSQL 15: `initdb` as the `postgres` OS user (it refuses root) in a temporary directory,
trust authentication, listening on 127.0.0.1:<free port> with its socket in that directory,
`fsync=off` (only process crashes are simulated here, never a machine's: the OS still writes
everything). Stopped fast or immediate (`immediate` is a crash: recovery on the next start),
or killed with SIGKILL (postmaster and every backend).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

RABBIT_BIN = Path("/usr/lib/rabbitmq/bin")
PG_BIN = Path("/usr/lib/postgresql/15/bin")
DIST_OFFSET = 20000  # RabbitMQ's distribution port is the AMQP port + 20000 by default


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    with socket.socket() as s:
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def free_port(low: int = 10000, high: int = 12700, *, with_dist: bool = False) -> int:
    """A port that is free (and, for a RabbitMQ node, whose port + 20000 is free too).

    Below Linux's ephemeral range (32768-60999), for the port and its distribution port: while a
    private server is down, the services keep connecting to its port, and a client's ephemeral
    port may then be that very port, connecting to itself (TCP simultaneous open) and holding it,
    so that the server cannot listen there again when it comes back.
    """
    for _ in range(500):
        port = secrets.randbelow(high - low) + low
        if _port_free(port) and (not with_dist or _port_free(port + DIST_OFFSET)):
            return port
    raise RuntimeError("no free port found")


def _wait_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


# --- RabbitMQ -------------------------------------------------------------------------------


@dataclass
class RabbitNode:
    """One private RabbitMQ node. Blocking methods: call them with `asyncio.to_thread` from a
    test's event loop when something else must keep running meanwhile."""

    base: Path  # shared by the nodes of one cluster (cookie, plugins file)
    node: str  # e.g. fault-1a2b3c-1@localhost
    port: int
    user: str = "guest"
    password: str = "guest"
    # The management plugin's HTTP port, when the node runs it (`private_rabbitmq(management=)`).
    management_port: int | None = None
    process: subprocess.Popen[bytes] | None = None
    _log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.short = self.node.split("@", 1)[0]
        self.dir = self.base / self.short
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{self.port}\n"
            "loopback_users = none\n"
            # A small machine shared with others: no disk alarm on a busy /tmp.
            "disk_free_limit.absolute = 50MB\n"
            + (
                f"management.tcp.ip = 127.0.0.1\nmanagement.tcp.port = {self.management_port}\n"
                if self.management_port
                else ""
            )
        )
        (self.dir / "rabbitmq-env.conf").write_text("")
        self._log = self.dir / "console.log"

    @property
    def amqp_url(self) -> str:
        return f"amqp://{self.user}:{self.password}@127.0.0.1:{self.port}/"

    @property
    def management_url(self) -> str:
        return f"http://{self.user}:{self.password}@127.0.0.1:{self.management_port}"

    @property
    def pid_file(self) -> Path:
        return self.dir / "beam.pid"

    def env(self) -> dict[str, str]:
        keep = ("PATH", "LANG", "LC_ALL", "TERM")
        return {
            **{k: v for k, v in os.environ.items() if k in keep},
            "HOME": str(self.base),  # the suite's own Erlang cookie
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.dir / "log"),
            "RABBITMQ_PID_FILE": str(self.pid_file),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq.conf"),
            "RABBITMQ_CONF_ENV_FILE": str(self.dir / "rabbitmq-env.conf"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }

    def ctl(
        self, *args: str, timeout: float = 60, check: bool = True, stdin: bytes | None = None
    ) -> str:
        """`rabbitmqctl -n <node> <args>`; its output."""
        result = subprocess.run(
            [str(RABBIT_BIN / "rabbitmqctl"), "-n", self.node, *args],
            input=stdin,
            env=self.env(),
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"rabbitmqctl -n {self.node} {' '.join(args)} failed ({result.returncode}):"
                f" {result.stdout.decode()[-2000:]} {result.stderr.decode()[-2000:]}"
            )
        return result.stdout.decode()

    def ctl_quiet(self, args: list[str], stdin: bytes | None = None) -> None:
        """The shape `libs.bus.authority.RabbitCtl`."""
        self.ctl("-q", *args, stdin=stdin)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 120) -> None:
        assert not self.running, f"{self.node} already running"
        self.pid_file.unlink(missing_ok=True)
        log = self._log.open("ab")
        self.process = subprocess.Popen(
            [str(RABBIT_BIN / "rabbitmq-server")],
            env=self.env(),
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # our signals (Ctrl-C) are not the node's
        )
        log.close()
        deadline = time.monotonic() + timeout
        error = ""
        while True:
            # Until the VM has registered its name, await_startup says "not running" at once.
            try:
                self.ctl("await_startup", "--timeout", "30", timeout=40)
                _wait_port(self.port, 30)
                if self.management_port:
                    _wait_port(self.management_port, 30)
                return
            except Exception as exc:
                error = str(exc)
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = self._log.read_text(errors="replace")[-3000:]
                self.kill()
                raise RuntimeError(f"{self.node} did not start: {error}\n{tail}")
            time.sleep(0.5)

    def beam_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def stop(self, timeout: float = 60) -> None:
        """A clean stop (`rabbitmqctl stop`), SIGKILL if it does not stop in time."""
        if not self.running:
            return
        try:
            self.ctl("stop", timeout=timeout)
            assert self.process is not None
            self.process.wait(timeout=timeout)
        except Exception:
            self.kill()

    def kill(self) -> None:
        """A crash: SIGKILL of the Erlang VM (and of the script that waited for it)."""
        pid = self.beam_pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
        # Let epmd forget the name before a restart under the same name.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self._registered():
            time.sleep(0.2)

    def _registered(self) -> bool:
        result = subprocess.run(
            ["epmd", "-names"], capture_output=True, text=True, check=False, timeout=10
        )
        return f"name {self.short} " in result.stdout

    def restart(self) -> None:
        self.stop()
        self.start()

    def down_for(self, seconds: float) -> None:
        self.stop()
        time.sleep(seconds)
        self.start()

    def log_tail(self, chars: int = 4000) -> str:
        found = sorted((self.dir / "log").glob("*.log"))
        text = "".join(p.read_text(errors="replace") for p in found)
        return text[-chars:]


def _new_base(prefix: str, plugins: str = "") -> Path:
    base = Path(tempfile.mkdtemp(prefix=prefix))
    cookie = base / ".erlang.cookie"
    cookie.write_text(secrets.token_hex(20).upper())
    cookie.chmod(0o400)
    (base / "enabled_plugins").write_text(f"[{plugins}].\n")
    return base


@contextlib.contextmanager
def private_rabbitmq(management: bool = False) -> Iterator[RabbitNode]:
    """A RabbitMQ node of our own (guest/guest on its own port), removed at the end; with
    `management`, its HTTP API too (as a deployment's broker has it)."""
    base = _new_base("fault-rabbit-", "rabbitmq_management" if management else "")
    port = free_port(with_dist=True)
    http = free_port() if management else None
    while http in (port, port + 1):
        http = free_port()
    node = RabbitNode(base, f"fault-{secrets.token_hex(3)}@localhost", port, management_port=http)
    try:
        node.start()
        yield node
    finally:
        node.stop(timeout=30)
        node.kill()
        shutil.rmtree(base, ignore_errors=True)


class AmqpProxy:
    """TCP proxy to the first of `upstreams` (ports on 127.0.0.1) that accepts, in a thread.

    A new connection tries the upstreams in turn starting after the last one used; a dead
    upstream closes the connections it carried, which then reconnect to a live one."""

    def __init__(self, upstreams: list[int]) -> None:
        self.upstreams = upstreams
        self.port = free_port()
        self._next = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="amqp-proxy", daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    def __enter__(self) -> AmqpProxy:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the AMQP proxy did not start")
        return self

    def __exit__(self, *_: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._accept, "127.0.0.1", self.port)
        )
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            self._loop.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream = None
        for i in range(len(self.upstreams)):
            index = (self._next + i) % len(self.upstreams)
            try:
                upstream = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", self.upstreams[index]), 2
                )
            except (OSError, TimeoutError):
                continue
            self._next = index + 1
            break
        if upstream is None:
            writer.transport.abort()
            return
        up_reader, up_writer = upstream
        self._writers.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                # One side gone: the whole connection is gone (as a dropped TCP path would be).
                writer.transport.abort()
                up_writer.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers.difference_update((writer, up_writer))


@dataclass
class RabbitCluster:
    nodes: list[RabbitNode]
    proxy: AmqpProxy

    @property
    def amqp_url(self) -> str:
        """Through the proxy: any live node."""
        return f"amqp://guest:guest@127.0.0.1:{self.proxy.port}/"

    def node_url(self, index: int) -> str:
        return self.nodes[index].amqp_url

    def ctl(self, *args: str, timeout: float = 60, stdin: bytes | None = None) -> str:
        """rabbitmqctl against the first running node."""
        for node in self.nodes:
            if node.running:
                return node.ctl(*args, timeout=timeout, stdin=stdin)
        raise RuntimeError("no node of the cluster is running")

    def ctl_quiet(self, args: list[str], stdin: bytes | None = None) -> None:
        self.ctl("-q", *args, stdin=stdin)


@contextlib.contextmanager
def private_rabbitmq_cluster(size: int = 3) -> Iterator[RabbitCluster]:
    """`size` RabbitMQ nodes on this machine joined in one cluster, behind a TCP proxy."""
    base = _new_base("fault-cluster-")
    tag = secrets.token_hex(3)
    nodes: list[RabbitNode] = []
    try:
        for i in range(size):
            port = free_port(with_dist=True)
            while any(n.port in (port, port + 1) for n in nodes):
                port = free_port(with_dist=True)
            nodes.append(RabbitNode(base, f"fault-{tag}-{i + 1}@localhost", port))
        for node in nodes:
            node.start()
        for node in nodes[1:]:
            node.ctl("stop_app")
            node.ctl("join_cluster", nodes[0].node)
            node.ctl("start_app")
        for node in nodes:
            node.ctl("await_startup")
        with AmqpProxy([n.port for n in nodes]) as proxy:
            yield RabbitCluster(nodes, proxy)
    finally:
        for node in reversed(nodes):
            node.stop(timeout=30)
            node.kill()
        shutil.rmtree(base, ignore_errors=True)


# --- PostgreSQL -----------------------------------------------------------------------------


@dataclass
class PrivatePostgres:
    dir: Path
    port: int
    # With a password, every connection must give one (scram-sha-256), as on a real server.
    password: str | None = None

    @property
    def data(self) -> Path:
        return self.dir / "data"

    def url(self, database: str = "postgres") -> str:
        user = f"postgres:{self.password}" if self.password else "postgres"
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def _as_postgres(self, *args: str, timeout: float = 120) -> str:
        result = subprocess.run(
            ["runuser", "-u", "postgres", "--", *args],
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(args)} failed ({result.returncode}): {result.stdout.decode()[-2000:]}"
                f" {result.stderr.decode()[-2000:]}"
            )
        return result.stdout.decode()

    def init(self) -> None:
        auth = ["-A", "trust"]
        if self.password:
            pwfile = self.dir / "pwfile"
            pwfile.write_text(self.password + "\n")
            shutil.chown(pwfile, "postgres")
            auth = ["-A", "scram-sha-256", f"--pwfile={pwfile}"]
        self._as_postgres(
            str(PG_BIN / "initdb"),
            "-D",
            str(self.data),
            *auth,
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
        )

    @property
    def running(self) -> bool:
        return self.postmaster_pid() is not None

    def postmaster_pid(self) -> int | None:
        try:
            pid = int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) else None

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1"
            " -c fsync=off -c max_connections=200 -c shared_buffers=64MB"
        )
        self._as_postgres(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.dir / "postgres.log"),
            "-w",
            "-t",
            "120",
            "-o",
            options,
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        """`fast`: clean; `immediate`: as a crash (recovery at the next start)."""
        if self.running:
            self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "stop")

    def kill(self) -> None:
        """SIGKILL of the postmaster and of every backend."""
        pid = self.postmaster_pid()
        if pid is None:
            return
        children = subprocess.run(
            ["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False
        ).stdout.split()
        for p in [pid, *map(int, children)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(_alive(p) for p in [pid, *map(int, children)]):
            time.sleep(0.1)
        # Orphans here are reaped by nobody (this machine's init does not): a zombie postmaster
        # keeps its pid, and the next postmaster would take the lock file for a live one's.
        (self.data / "postmaster.pid").unlink(missing_ok=True)
        for stale in (f".s.PGSQL.{self.port}.lock", f".s.PGSQL.{self.port}"):
            (self.dir / stale).unlink(missing_ok=True)

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()

    def down_for(self, seconds: float, mode: str = "fast") -> None:
        self.stop(mode)
        time.sleep(seconds)
        self.start()

    def log_tail(self, chars: int = 4000) -> str:
        path = self.dir / "postgres.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours is dead too.
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z"):
            return False
    return True


@contextlib.contextmanager
def private_postgres(password: str | None = None) -> Iterator[PrivatePostgres]:
    """A PostgreSQL 15 cluster of our own (postgres, trust; or every role by password) on its
    own port, removed at the end."""
    base = Path(tempfile.mkdtemp(prefix="fault-pg-"))
    shutil.chown(base, "postgres")
    pg = PrivatePostgres(base, free_port(), password)
    try:
        pg.init()
        pg.start()
        yield pg
    finally:
        with contextlib.suppress(Exception):
            pg.stop("immediate")
        pg.kill()
        shutil.rmtree(base, ignore_errors=True)
