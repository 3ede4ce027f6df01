-- SPDX-License-Identifier: MIT
-- Schema version 1: the seed's registry of pools and VMs.
CREATE TABLE IF NOT EXISTS pools (
    pool_id     CHAR(1) PRIMARY KEY CHECK (pool_id IN ('A', 'B')),
    pool_name   TEXT NOT NULL,
    description TEXT,
    enabled     INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    created_at  TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at  TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE IF NOT EXISTS vms (
    vm_id       INTEGER UNIQUE CHECK (vm_id BETWEEN 1 AND 2147483647),
    vm_uuid     TEXT UNIQUE NOT NULL,
    vm_name     TEXT,
    pool_id     CHAR(1) NOT NULL DEFAULT 'A'
                CHECK (pool_id IN ('A', 'B')) REFERENCES pools(pool_id),
    priority    INTEGER NOT NULL DEFAULT 1 CHECK (priority BETWEEN 0 AND 2),
    created_at  TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at  TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE INDEX IF NOT EXISTS idx_vm_uuid ON vms(vm_uuid);
CREATE INDEX IF NOT EXISTS idx_vm_pool ON vms(pool_id);
CREATE INDEX IF NOT EXISTS idx_vm_priority ON vms(priority);

INSERT OR IGNORE INTO pools (pool_id, pool_name, description) VALUES
    ('A', 'Pool A', 'Default pool'),
    ('B', 'Pool B', 'Second pool');
