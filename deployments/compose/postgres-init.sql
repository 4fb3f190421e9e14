-- Runs once, when the postgres volume is first initialised: one database per service.
CREATE DATABASE authz;
CREATE DATABASE idp;
-- Demo Corp SSO, the demo profile's second authz + idp pair.
CREATE DATABASE corp_authz;
CREATE DATABASE corp_idp;
