-- SPDX-License-Identifier: MIT
-- Schema version 2: find VMs by name. CloudStack destroys and recreates its
-- XAPI VMs, so their UUIDs change while their name-labels stay.
CREATE INDEX IF NOT EXISTS idx_vm_name ON vms(vm_name);
