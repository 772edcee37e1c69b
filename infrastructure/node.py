"""The composition root: one node's application, store, keys and read models.

``Node.open(settings)`` wires everything for a data dir that ``init`` made;
the CLI, the API and the tests all go through it. Opening a node projects
whatever the previous run stored but did not project (a crash between the
two), so read models are complete before the first request.
"""

from __future__ import annotations

from typing import Any

from domain.application import NodeApplication
from infrastructure.key_directory import KeyDirectory
from infrastructure.persistence import Database, store_env
from infrastructure.settings import NodeConfig, Settings
from infrastructure.signing import DEFAULT_ALGORITHM, Keyring
from projections.projector import Projector


def init_node(settings: Settings, base_url: str, *, alg: str = DEFAULT_ALGORITHM,
              key_pem: bytes | None = None) -> NodeConfig:
    """Create the data dir, the config and the signing key (idempotent for the key)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    config = NodeConfig.for_base_url(base_url)
    config.save(settings.data_dir)
    keys_dir = settings.keys_dir
    if key_pem is not None:
        Keyring.import_pem(keys_dir, key_pem)
    elif not (keys_dir / "keyring.json").exists():
        Keyring.create(keys_dir, alg)
    return config


class Node:
    def __init__(self, settings: Settings, config: NodeConfig, keyring: Keyring) -> None:
        self.settings = settings
        self.config = config
        self.keyring = keyring
        env = store_env(settings.database_url, str(settings.sqlite_path))
        self.app = NodeApplication(
            env,
            node=config.name,
            signer=lambda data: self.keyring.active.sign(data),
            verifier=self._verify,
            after_save=self._project,
        )
        self.db = Database(self.app.recorder)
        self.keys = KeyDirectory(self.db, config.name, keyring)
        self.keys.create_tables()
        self.projector = Projector(self.db, self.app.recorder)
        self.projector.create_tables()
        self.projector.catch_up()

    @classmethod
    def open(cls, settings: Settings) -> Node:
        config = NodeConfig.load(settings.data_dir)
        keyring = Keyring.load(settings.keys_dir)
        return cls(settings, config, keyring)

    @property
    def name(self) -> str:
        return self.config.name

    def _verify(self, tx: dict[str, Any], signed: bytes) -> None:
        self.keys.verify(tx, signed)

    def _project(self) -> None:
        self.projector.catch_up()

    def close(self) -> None:
        self.app.close()


