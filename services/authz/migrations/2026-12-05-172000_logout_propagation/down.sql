DROP TABLE logout_deliveries;
ALTER TABLE clients DROP COLUMN logout;
