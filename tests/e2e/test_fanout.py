"""A hub pushes to each subscriber apart: one that never answers does not hold back the others."""

from __future__ import annotations

import socket
import time

import httpx

from domain.transaction import ENTITY_TYPES
from infrastructure.local_cluster import free_port
from infrastructure.peers import Peer
from tests.e2e.conftest import Spawner, link


def test_a_subscriber_that_never_answers_does_not_delay_the_others(spawn: Spawner):
    hub, platform = spawn.many("hub", "platform")
    link(hub, platform)
    subscriber = platform.admin()
    try:
        subscriber.subscribe_to(hub.name)
    finally:
        subscriber.close()
    silent = socket.socket()  # accepts connections (the kernel's backlog) and never answers
    silent.bind(("127.0.0.1", free_port()))
    silent.listen(64)
    try:
        admin = hub.admin()
        try:  # sorted before the platform: a hub pushing one subscriber after another would wait 30 s on it
            name = "urn:domain:0-silent.example.org"
            admin.peers.add(Peer(name, f"http://127.0.0.1:{silent.getsockname()[1]}", ENTITY_TYPES, ENTITY_TYPES))
            admin.peers.subscribe(name)
        finally:
            admin.close()
        time.sleep(1.5)  # the hub's pusher has read the peers again (it polls every second)
        editor = {"Authorization": f"Bearer {hub.token('ann')}"}
        for i in range(3):
            gid = httpx.post(f"{hub.base_url}/items", headers=editor, json={"title": f"t{i}", "markdown": "m\n"},
                             timeout=30).json()["gid"]
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:  # bounded
                if platform.query("SELECT item_gid FROM documents WHERE item_gid = ?", (gid,)):
                    break
                time.sleep(0.1)
            else:
                raise AssertionError(f"edit {i} did not reach the platform within 10 s")
    finally:
        silent.close()
