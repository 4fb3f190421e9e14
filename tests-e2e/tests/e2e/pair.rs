//! An authz and idp pair wired to each other over gRPC, as `make demo` runs them, for the
//! tests that sign a user in to a relying party and then look at what the services did.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::code_flow::{authz_keys, cli, migrate, pairs, write};
use crate::harness::{TEST_KEK, free_port};

/// The relying party `rp`'s redirect URI.
pub(crate) const REDIRECT_URI: &str = "http://127.0.0.1/cb";
/// The scope `rp` is registered with.
pub(crate) const SCOPE: &str = "openid profile email offline_access";

/// Environment, URLs and client secrets of a pair not started yet.
pub(crate) struct Pair {
    /// authz's issuer (`http://localhost:<port>`).
    pub(crate) issuer: String,
    /// idp's public URL.
    pub(crate) idp_url: String,
    /// authz's environment: database, keys and its wiring to idp.
    pub(crate) authz_env: Vec<(String, String)>,
    /// idp's database only (for its CLI).
    pub(crate) idp_db: Vec<(String, String)>,
    /// idp's environment: database and its wiring to authz (add test settings to it).
    pub(crate) idp_env: Vec<(String, String)>,
    /// `rp`'s secret: authorization code and refresh token grants, [`SCOPE`], [`REDIRECT_URI`].
    pub(crate) rp_secret: String,
    /// `introspector`'s secret (may introspect).
    pub(crate) introspector: String,
}

/// Migrates both SQLite databases under `dir` and registers authz's clients `idp` (the
/// LoginFlow caller), `rp` and `introspector`; the services are the caller's to start.
pub(crate) fn prepare(dir: &Path) -> Pair {
    let (authz_http, authz_grpc, idp_http, idp_grpc) =
        (free_port(), free_port(), free_port(), free_port());
    let issuer = format!("http://localhost:{authz_http}");
    let idp_url = format!("http://localhost:{idp_http}");
    let idp_secret = write(dir, "idp-secret", "idp-calls-authz-loginflow-0123456789");
    let authz_secret = write(dir, "authz-secret", "authz-calls-idp-sessions-0123456789");

    let mut authz_env = authz_keys();
    authz_env.extend(pairs(&[
        (
            "AUTHZ__DATABASE__URL",
            &format!("sqlite://{}/authz.db", dir.display()),
        ),
        ("AUTHZ__KEYS__ENCRYPTION_KEY", TEST_KEK),
    ]));
    migrate("authz", &authz_env);
    let client = |args: &[&str]| cli("authz", &authz_env, args);
    client(&[
        "clients",
        "create",
        "--id",
        "idp",
        "--name",
        "idp",
        "--secret-file",
        &idp_secret,
        "--json",
    ]);
    let secret_of =
        |created: serde_json::Value| created["client_secret"].as_str().unwrap().to_owned();
    let rp_secret = secret_of(client(&[
        "clients",
        "create",
        "--id",
        "rp",
        "--name",
        "Example RP",
        "--grant-type",
        "authorization_code",
        "--grant-type",
        "refresh_token",
        "--scope",
        SCOPE,
        "--redirect-uri",
        REDIRECT_URI,
        "--json",
    ]));
    let introspector = secret_of(client(&[
        "clients",
        "create",
        "--id",
        "introspector",
        "--name",
        "introspector",
        "--introspect",
        "true",
        "--json",
    ]));
    let idp_db = pairs(&[(
        "IDP__DATABASE__URL",
        &format!("sqlite://{}/idp.db", dir.display()),
    )]);
    migrate("idp", &idp_db);

    authz_env.extend(pairs(&[
        ("AUTHZ__ISSUER", &issuer),
        ("AUTHZ__HTTP__PORT", &authz_http.to_string()),
        ("AUTHZ__GRPC__PORT", &authz_grpc.to_string()),
        ("AUTHZ__LOGIN__IDP_CLIENT_ID", "idp"),
        ("AUTHZ__IDP__PUBLIC_URL", &idp_url),
        (
            "AUTHZ__IDP__GRPC_URL",
            &format!("http://127.0.0.1:{idp_grpc}"),
        ),
        ("AUTHZ__IDP__CLIENT_ID", "authz"),
        ("AUTHZ__IDP__CLIENT_SECRET_FILE", &authz_secret),
    ]));
    let mut idp_env = idp_db.clone();
    idp_env.extend(pairs(&[
        ("IDP__PUBLIC_URL", &idp_url),
        ("IDP__HTTP__PORT", &idp_http.to_string()),
        ("IDP__GRPC__PORT", &idp_grpc.to_string()),
        (
            "IDP__AUTHZ__GRPC_URL",
            &format!("http://127.0.0.1:{authz_grpc}"),
        ),
        ("IDP__AUTHZ__CLIENT_ID", "idp"),
        ("IDP__AUTHZ__CLIENT_SECRET_FILE", &idp_secret),
        ("IDP__SESSIONS_API__CLIENT_ID", "authz"),
        ("IDP__SESSIONS_API__CLIENT_SECRET_FILE", &authz_secret),
        ("IDP__CSRF__KEY", &STANDARD.encode([7u8; 32])),
    ]));
    Pair {
        issuer,
        idp_url,
        authz_env,
        idp_db,
        idp_env,
        rp_secret,
        introspector,
    }
}
