//! `demo device`: a TV-style client of the Device Authorization Grant (RFC 8628). It asks
//! authz for a device code and a user code (§3.1-§3.2), prints where to go and what to type
//! (and the `verification_uri_complete` shortcut), then polls the token endpoint (§3.4)
//! every `interval` seconds, adding 5 seconds on each `slow_down` (§3.5), until the user
//! approved (the tokens' claims are printed, verified against authz's JWKS), denied
//! (`access_denied`) or the code expired (`expired_token`).
//!
//! [`start`] and [`poll`] are the steps, for the end-to-end tests.

use std::process::ExitCode;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::seeded::{AUDIENCE, TV_CLIENT_ID};
use crate::support::{base_url, causes, json_of, str_field};

/// The device grant's `grant_type` (RFC 8628 §3.4).
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// `demo device` options.
#[derive(Debug, Clone, clap::Args)]
pub struct DeviceArgs {
    /// authz's issuer URL.
    #[arg(long, default_value = "http://localhost:8080")]
    pub issuer: String,
    /// The device client (public, allowed the device grant), seeded by `authz serve --demo`.
    #[arg(long, default_value = TV_CLIENT_ID)]
    pub client_id: String,
    /// The scopes to ask for.
    #[arg(long, default_value = "openid profile offline_access items:read")]
    pub scope: String,
}

/// A started device authorization (RFC 8628 §3.2).
#[derive(Debug, Clone)]
pub struct DeviceCodes {
    /// The device code (kept by the device, never shown).
    pub device_code: String,
    /// What the user types.
    pub user_code: String,
    /// Where the user goes.
    pub verification_uri: String,
    /// The same with the user code filled in.
    pub verification_uri_complete: String,
    /// Seconds the codes live.
    pub expires_in: u64,
    /// Seconds between polls.
    pub interval: u64,
}

/// The endpoints the device needs, from discovery.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// `device_authorization_endpoint` (RFC 8628 §4).
    pub device_authorization: String,
    /// `token_endpoint`.
    pub token: String,
    /// `jwks_uri`.
    pub jwks: String,
}

/// Reads the endpoints from `issuer`'s discovery document.
pub async fn endpoints(http: &reqwest::Client, issuer: &str) -> Result<Endpoints, String> {
    let url = format!("{issuer}/.well-known/openid-configuration");
    let res = http
        .get(&url)
        .send()
        .await
        .map_err(|e| format!("GET {url}: {}", causes(&e)))?;
    let (status, doc) = json_of(res).await?;
    if status != StatusCode::OK {
        return Err(format!("HTTP {status} from {url}"));
    }
    Ok(Endpoints {
        device_authorization: str_field(&doc, "device_authorization_endpoint")?,
        token: str_field(&doc, "token_endpoint")?,
        jwks: str_field(&doc, "jwks_uri")?,
    })
}

/// RFC 8628 §3.1: asks for a device code and a user code as public client `client_id`.
pub async fn start(
    http: &reqwest::Client,
    endpoints: &Endpoints,
    client_id: &str,
    scope: &str,
) -> Result<DeviceCodes, String> {
    let res = http
        .post(&endpoints.device_authorization)
        .form(&[("client_id", client_id), ("scope", scope)])
        .send()
        .await
        .map_err(|e| format!("POST device authorization: {}", causes(&e)))?;
    let (status, body) = json_of(res).await?;
    if status != StatusCode::OK {
        return Err(format!("HTTP {status}: {body}"));
    }
    let number = |name: &str| {
        body[name]
            .as_u64()
            .ok_or_else(|| format!("no {name} in the response"))
    };
    Ok(DeviceCodes {
        device_code: str_field(&body, "device_code")?,
        user_code: str_field(&body, "user_code")?,
        verification_uri: str_field(&body, "verification_uri")?,
        verification_uri_complete: str_field(&body, "verification_uri_complete")?,
        expires_in: number("expires_in")?,
        // RFC 8628 §3.2: 5 seconds when absent.
        interval: body["interval"].as_u64().unwrap_or(5),
    })
}

/// What one poll of the token endpoint said (RFC 8628 §3.5).
#[derive(Debug, Clone, PartialEq)]
pub enum Poll {
    /// The token response.
    Tokens(Value),
    /// `authorization_pending`: ask again after the interval.
    Pending,
    /// `slow_down`: ask again after the interval plus 5 seconds.
    SlowDown,
    /// Any other error (`access_denied`, `expired_token`, ...), with its body.
    Failed(String, Value),
}

/// One poll of the token endpoint (RFC 8628 §3.4).
pub async fn poll(
    http: &reqwest::Client,
    endpoints: &Endpoints,
    client_id: &str,
    device_code: &str,
) -> Result<Poll, String> {
    let res = http
        .post(&endpoints.token)
        .form(&[
            ("grant_type", GRANT_TYPE),
            ("device_code", device_code),
            ("client_id", client_id),
        ])
        .send()
        .await
        .map_err(|e| format!("POST token: {}", causes(&e)))?;
    let (status, body) = json_of(res).await?;
    if status == StatusCode::OK {
        return Ok(Poll::Tokens(body));
    }
    Ok(match body["error"].as_str() {
        Some("authorization_pending") => Poll::Pending,
        Some("slow_down") => Poll::SlowDown,
        Some(other) => Poll::Failed(other.to_owned(), body.clone()),
        None => Poll::Failed(format!("HTTP {status}"), body),
    })
}

/// Polls every `interval` seconds (5 more after each `slow_down`) until the tokens come
/// or polling fails; `on_wait` hears each wait with its length.
pub async fn wait_for_tokens(
    http: &reqwest::Client,
    endpoints: &Endpoints,
    client_id: &str,
    codes: &DeviceCodes,
    mut on_wait: impl FnMut(&Poll, u64),
) -> Result<Value, String> {
    let mut interval = codes.interval;
    loop {
        tokio::time::sleep(Duration::from_secs(interval)).await;
        let answer = poll(http, endpoints, client_id, &codes.device_code).await?;
        match answer {
            Poll::Tokens(body) => return Ok(body),
            Poll::Pending => {}
            Poll::SlowDown => interval += 5,
            Poll::Failed(error, body) => return Err(format!("{error}: {body}")),
        }
        on_wait(&answer, interval);
    }
}

/// The claims of `token`, verified against the keys at `jwks` (typ `typ`).
pub async fn claims(
    http: &reqwest::Client,
    jwks: &str,
    token: &str,
    typ: &str,
) -> Result<serde_json::Map<String, Value>, String> {
    let res = http
        .get(jwks)
        .send()
        .await
        .map_err(|e| format!("GET JWKS: {}", causes(&e)))?;
    let (_, doc) = json_of(res).await?;
    let mut keys = issuer::jws::Verifiers::new();
    keys.extend_from_jwks(&doc);
    issuer::jws::verify(
        token,
        &keys,
        &issuer::jws::Expect {
            algorithms: &issuer::Algorithm::ALL,
            typ: Some(typ),
        },
    )
    .map(|v| v.claims)
    .map_err(|e| format!("token does not verify: {e}"))
}

/// Runs `demo device`: exit code 0 with tokens, 1 when denied, expired or failed, 2 on a
/// malformed URL argument.
pub fn run(args: DeviceArgs) -> ExitCode {
    let issuer = match base_url("issuer", &args.issuer) {
        Ok(issuer) => issuer,
        Err(line) => {
            eprintln!("{line}");
            return ExitCode::from(crate::EXIT_USAGE);
        }
    };
    let setup = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
        .and_then(|rt| {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(10))
                .build()
                .map(|http| (rt, http))
                .map_err(|e| e.to_string())
        });
    let (rt, http) = match setup {
        Ok(setup) => setup,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(crate::EXIT_USAGE);
        }
    };
    match rt.block_on(device(&http, &issuer, &args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn device(http: &reqwest::Client, issuer: &str, args: &DeviceArgs) -> Result<(), String> {
    let endpoints = endpoints(http, issuer).await?;
    let codes = start(http, &endpoints, &args.client_id, &args.scope).await?;
    println!("To sign in, visit {}", codes.verification_uri);
    println!("and enter the code {}", codes.user_code);
    println!("(or open {})", codes.verification_uri_complete);
    println!(
        "The code expires in {} minutes. Waiting…",
        codes.expires_in / 60
    );
    let tokens = wait_for_tokens(http, &endpoints, &args.client_id, &codes, |answer, wait| {
        if *answer == Poll::SlowDown {
            println!("slow_down: polling every {wait} s now");
        }
    })
    .await?;
    println!("signed in: scope {}", tokens["scope"]);
    let access = str_field(&tokens, "access_token")?;
    let at = claims(http, &endpoints.jwks, &access, "at+jwt").await?;
    println!("access token claims (for {AUDIENCE}):");
    println!("{}", serde_json::to_string_pretty(&at).unwrap_or_default());
    if let Some(id_token) = tokens["id_token"].as_str() {
        let id = claims(http, &endpoints.jwks, id_token, "JWT").await?;
        println!("ID token claims:");
        println!("{}", serde_json::to_string_pretty(&id).unwrap_or_default());
    }
    if tokens["refresh_token"].is_string() {
        println!("a refresh token was issued too (not shown)");
    }
    Ok(())
}
