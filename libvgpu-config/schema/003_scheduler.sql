-- SPDX-License-Identifier: MIT
-- Schema version 3: the scheduler's settings. A pool is any letter A to Z
-- (A and B stay, the defaults), with a weight (its share of the GPU time
-- when pools compete), a cap (the most it may use, in percent of its GPUs,
-- even when they are otherwise idle) and the GPUs it may use (a bit mask;
-- 0: all). A VM gets a weight within its pool, a rate limit (GPU
-- milliseconds per second; 0: none) and a device-memory quota (MiB; 0:
-- none). SQLite cannot change a CHECK constraint in place, so both tables
-- are made anew and their rows copied: the new vms refer to the new pools,
-- the old tables go, and the new ones take their names (which also renames
-- the reference).
CREATE TABLE pools_v3 (
    pool_id     CHAR(1) PRIMARY KEY
                CHECK (length(pool_id) = 1 AND pool_id BETWEEN 'A' AND 'Z'),
    pool_name   TEXT NOT NULL,
    description TEXT,
    enabled     INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    weight      INTEGER NOT NULL DEFAULT 100 CHECK (weight BETWEEN 1 AND 10000),
    cap_percent INTEGER NOT NULL DEFAULT 100 CHECK (cap_percent BETWEEN 1 AND 100),
    gpus        INTEGER NOT NULL DEFAULT 0 CHECK (gpus BETWEEN 0 AND 4294967295),
    created_at  TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at  TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
INSERT INTO pools_v3 (pool_id, pool_name, description, enabled, created_at, updated_at)
    SELECT pool_id, pool_name, description, enabled, created_at, updated_at FROM pools;

CREATE TABLE vms_v3 (
    vm_id         INTEGER UNIQUE CHECK (vm_id BETWEEN 1 AND 2147483647),
    vm_uuid       TEXT UNIQUE NOT NULL,
    vm_name       TEXT,
    pool_id       CHAR(1) NOT NULL DEFAULT 'A' REFERENCES pools_v3(pool_id),
    priority      INTEGER NOT NULL DEFAULT 1 CHECK (priority BETWEEN 0 AND 2),
    weight        INTEGER NOT NULL DEFAULT 100 CHECK (weight BETWEEN 1 AND 10000),
    rate_limit_ms INTEGER NOT NULL DEFAULT 0 CHECK (rate_limit_ms BETWEEN 0 AND 32000),
    mem_quota_mib INTEGER NOT NULL DEFAULT 0 CHECK (mem_quota_mib BETWEEN 0 AND 16777216),
    created_at    TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at    TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
INSERT INTO vms_v3 (vm_id, vm_uuid, vm_name, pool_id, priority, created_at, updated_at)
    SELECT vm_id, vm_uuid, vm_name, pool_id, priority, created_at, updated_at FROM vms;

DROP TABLE vms;
DROP TABLE pools;
ALTER TABLE pools_v3 RENAME TO pools;
ALTER TABLE vms_v3 RENAME TO vms;
CREATE INDEX IF NOT EXISTS idx_vm_uuid ON vms(vm_uuid);
CREATE INDEX IF NOT EXISTS idx_vm_pool ON vms(pool_id);
CREATE INDEX IF NOT EXISTS idx_vm_priority ON vms(priority);
CREATE INDEX IF NOT EXISTS idx_vm_name ON vms(vm_name);
