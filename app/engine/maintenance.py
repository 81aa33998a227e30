"""What a user does to the queue from a terminal, beside (or without) a running engine.

``move_folder``: a filespace is mounted somewhere else now ("this folder moved"); its jobs follow
it, so nothing delivered is uploaded again. The engine must not be running (its roots come from
the config it read at start). ``confirm_account``: the queue may go to the account signed in
now; a running engine notices within seconds.
"""

from __future__ import annotations

import json
import os

from app.core.errors import ConfigError
from app.core.roots import resolved, root_id_for
from app.core.settings import Settings
from app.engine.instance_lock import InstanceLock
from app.engine.queue_store import QueueStore

ACCOUNT_KEY = "account"  # meta: the account the queue is meant for


def account_identity(account_id: str | None, email: str | None) -> str:
    return json.dumps({"account_id": account_id, "email": email})


async def move_folder(settings: Settings, old_path: str, new_path: str) -> int:
    """Re-point the jobs of the watch folder ``old_path`` to ``new_path``; returns how many."""
    new_real = resolved(new_path)
    if not os.path.isdir(new_real):
        raise ConfigError(f"{new_path}: no such folder (mount the filespace there first)")
    lock = InstanceLock(settings.paths.data_dir / "engine.lock")
    lock.acquire()  # refused with a plain message while PostFlow runs
    store = QueueStore(settings.paths.state_db)
    try:
        await store.open()
        old_id = root_id_for(resolved(old_path))
        moved = await store.rekey_root([old_id], root_id_for(new_real), new_real)
        if moved == 0:
            raise ConfigError(f"PostFlow has no history for a watch folder at {old_path}.")
        return moved
    finally:
        await store.close()
        lock.release()


async def confirm_account(settings: Settings, account_id: str, email: str | None) -> None:
    store = QueueStore(settings.paths.state_db)
    await store.open(recover=False)  # an engine may be running: never touch its jobs
    try:
        await store.set_meta(ACCOUNT_KEY, account_identity(account_id, email))
    finally:
        await store.close()
