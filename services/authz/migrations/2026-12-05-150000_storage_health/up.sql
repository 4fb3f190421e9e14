-- One row the service rewrites every database.write_check_interval, so /readyz reports
-- whether the database takes writes (a locked SQLite file, a full disk, a lost
-- PostgreSQL server), not only whether it answers reads. Portable SQL.
CREATE TABLE storage_health (
    id INTEGER PRIMARY KEY NOT NULL,
    beats BIGINT NOT NULL
);
INSERT INTO storage_health (id, beats) VALUES (1, 0);
