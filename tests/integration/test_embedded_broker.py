"""The embedded broker starts on a port of its own even when the free port it was given is taken
before it binds it (localstack.embedded.start_broker); a port the caller names is kept or refused."""
from __future__ import annotations

import socket

import pytest

from services.common.localstack import embedded

pytestmark = pytest.mark.integration


@pytest.fixture
def taken_port():
    """A port bound by another socket, not listening: a broker cannot bind it, nor connect to it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def offer_first(monkeypatch, port: int) -> None:
    """free_port() hands out `port` once, then free ports as before."""
    offered, real_free_port = iter([port]), embedded.free_port
    monkeypatch.setattr(embedded, "free_port", lambda: next(offered, None) or real_free_port())


def test_a_free_port_taken_before_the_broker_binds_it_is_replaced(monkeypatch, taken_port):
    offer_first(monkeypatch, taken_port)
    broker = embedded.start_broker()
    try:
        assert broker.port != taken_port
        with socket.create_connection(("127.0.0.1", broker.port), timeout=5):
            pass
    finally:
        broker.stop()


def test_a_free_port_another_process_listens_on_is_replaced(monkeypatch):
    """The port answers, but not from this broker, which could not bind it and exits."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        offer_first(monkeypatch, listener.getsockname()[1])
        broker = embedded.start_broker()
        try:
            assert broker.port != listener.getsockname()[1]
            assert broker.process.poll() is None
        finally:
            broker.stop()


def test_a_port_the_caller_names_is_not_replaced(taken_port):
    with pytest.raises(embedded.BrokerExited):
        embedded.start_broker(port=taken_port)
