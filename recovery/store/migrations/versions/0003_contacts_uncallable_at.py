"""contacts.uncallable_at: when the contact centre was told never to dial a contact again

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import recovery.store.tables

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "uncallable_at",
                recovery.store.tables.UTCDateTime(timezone=True),
                nullable=True,
            )
        )
        batch_op.create_index("ix_contacts_uncallable", ["uncallable_at", "state"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_index("ix_contacts_uncallable")
        batch_op.drop_column("uncallable_at")
