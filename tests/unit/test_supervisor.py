"""The fleet's supervisor over real (short-lived) processes, on a clock the test moves: the
restart backoff doubles with each exit in a row, is bounded, starts over after a process stayed
up, and a replacement is given its predecessor's PID."""

import json
from pathlib import Path

import pytest

from services.fleet.processes import Service
from services.fleet.supervisor import MAX_BACKOFF, STABLE_AFTER, Supervisor

pytestmark = pytest.mark.timeout(60)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def crashing(tmp_path: Path) -> Service:
    """A process that prints its arguments and exits with code 3."""
    code = "import sys; print(sys.argv[1:], flush=True); sys.exit(3)"
    return Service(
        "crasher",
        ["-c", code],
        {},
        log_path=tmp_path / "crasher.log",
        predecessor_flag="--predecessor",
    )


def exit_of(service: Service) -> int:
    assert service.process is not None
    service.process.wait(30)
    return service.process.pid


def status(path: Path) -> dict[str, object]:
    services: dict[str, dict[str, object]] = json.loads(path.read_text())["services"]
    return services["crasher"]


def test_an_exited_process_is_restarted_after_a_growing_bounded_backoff(tmp_path: Path) -> None:
    clock, said = Clock(), list[str]()
    service = crashing(tmp_path)
    service.start()
    supervisor = Supervisor([service], tmp_path / "fleet.json", said.append, clock)
    try:
        delays = []
        for _ in range(7):
            pid = exit_of(service)
            supervisor.check()  # sees the exit
            assert status(tmp_path / "fleet.json")["pid"] is None
            [watch] = supervisor.watches
            assert watch.restart_at is not None
            delay = watch.restart_at - clock.now
            delays.append(delay)
            clock.now += delay - 0.1
            supervisor.check()
            assert service.process is not None and service.process.pid == pid  # not yet
            clock.now += 0.1
            supervisor.check()
            assert service.process.pid != pid  # restarted
            assert status(tmp_path / "fleet.json")["pid"] == service.process.pid
        assert delays == [1, 2, 4, 8, 16, MAX_BACKOFF, MAX_BACKOFF]
        assert status(tmp_path / "fleet.json")["restarts"] == 7
        assert f"crasher (pid {pid}) exited (3); restarting it in 30 s" in said

        # Up for a while before it exits again: the backoff starts over.
        exit_of(service)
        clock.now += STABLE_AFTER
        supervisor.check()
        [watch] = supervisor.watches
        assert watch.restart_at == clock.now + 1
    finally:
        service.stop()


def test_a_replacement_is_given_the_pid_it_replaces(tmp_path: Path) -> None:
    clock = Clock()
    service = crashing(tmp_path)
    service.start()
    supervisor = Supervisor([service], tmp_path / "fleet.json", lambda line: None, clock)
    try:
        first = exit_of(service)
        supervisor.check()
        clock.now += 1
        supervisor.check()
        exit_of(service)
    finally:
        service.stop()
    lines = (tmp_path / "crasher.log").read_text().splitlines()
    assert lines == ["[]", str(["--predecessor", str(first)])]


def test_a_process_that_keeps_running_is_left_alone(tmp_path: Path) -> None:
    clock = Clock()
    service = Service("sleeper", ["-c", "import time; time.sleep(60)"], {})
    service.start()
    try:
        supervisor = Supervisor([service], tmp_path / "fleet.json", lambda line: None, clock)
        assert service.process is not None
        pid = service.process.pid
        for _ in range(20):  # checked again and again, for 200 s: nothing to do
            supervisor.check()
            clock.now += 10
        assert service.process.pid == pid and service.process.poll() is None
        services = json.loads((tmp_path / "fleet.json").read_text())["services"]
        assert services == {"sleeper": {"pid": pid, "restarts": 0}}
    finally:
        service.stop()
