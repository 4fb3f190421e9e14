DROP TABLE upstream_pending;
DROP TABLE upstream_flows;
DROP TABLE upstream_identities;
