DROP TABLE revocation_outbox;
DROP TABLE retired_usernames;
