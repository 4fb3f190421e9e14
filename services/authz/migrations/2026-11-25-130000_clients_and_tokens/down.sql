DROP TABLE revoked_jtis;
DROP TABLE opaque_tokens;
DROP TABLE client_secrets;
DROP TABLE clients;
