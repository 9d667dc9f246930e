"""The base revision: an empty schema that every capability's migrations start from.

Revision ID: 0001_appdb
Revises:
"""

from __future__ import annotations

revision = "0001_appdb"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
