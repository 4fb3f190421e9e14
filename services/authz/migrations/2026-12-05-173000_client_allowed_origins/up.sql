-- browser clients (CORS): origins besides those of the redirect URIs from which browser
-- JavaScript may call the token, userinfo and revocation endpoints for this client, as a
-- JSON array of serialized origins (`https://app.example.com`).
ALTER TABLE clients ADD COLUMN allowed_origins TEXT NOT NULL DEFAULT '[]';
