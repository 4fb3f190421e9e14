-- account page: profile pictures, stored as the re-encoded square PNG idp serves at
-- /avatars/{user_id}. Portable SQL for SQLite and PostgreSQL (BYTEA has no special
-- meaning to SQLite, which keeps the bytes as a BLOB); times are Unix seconds. Deleting
-- the user deletes the picture.
CREATE TABLE avatars (
    user_id TEXT PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    png BYTEA NOT NULL,
    etag TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
