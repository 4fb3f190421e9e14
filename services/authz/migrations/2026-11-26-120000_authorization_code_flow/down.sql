DROP TABLE grant_access_tokens;
DROP TABLE refresh_tokens;
DROP TABLE authorization_codes;
DROP TABLE grants;
DROP TABLE consents;
DROP TABLE browser_sessions;
DROP TABLE authorization_requests;
