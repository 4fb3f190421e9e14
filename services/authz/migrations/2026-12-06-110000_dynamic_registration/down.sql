DROP TABLE client_registrations;
DROP TABLE registration_tokens;
