DROP TABLE storage_health;
