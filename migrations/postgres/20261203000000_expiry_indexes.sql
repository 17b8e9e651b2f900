-- The scheduler asks only for the server-signed roles that are due (by role
-- and expiry), and the expiring-roles listing walks roles in expiry order:
-- both are index range scans, so neither grows with the number of
-- repositories that are not due (BENCHMARKS.md shows the plans).
CREATE INDEX current_metadata_role_expires ON current_metadata (role, expires_at);
CREATE INDEX current_metadata_expires ON current_metadata (expires_at);
-- The scheduler leaves transparent mirrors out: a partial index holds only them.
CREATE INDEX repositories_mirrored ON repositories (gun) WHERE mirrored <> 0;
