-- Runs once, when the postgres volume is first initialised: one database per service.
CREATE DATABASE authz;
CREATE DATABASE idp;
