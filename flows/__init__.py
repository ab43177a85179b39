"""The flows: each orchestrates one job of the recovery from tasks (``tasks``)."""

from recovery.prefect_heartbeats import prompt_heartbeat_stop

# Before any flow run starts: its heartbeats stop the moment it ends.
prompt_heartbeat_stop()
